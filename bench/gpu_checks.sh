#!/usr/bin/env bash
# The GPU checks, as one short script for a machine with CUDA. The device tool runs it in the
# repository root, with no package index in reach: first `bash bench/gpu_wheels.sh` here,
# then run `bash bench/gpu_checks.sh` there with `.whl` carried. It uses the image's own
# python3 and its CUDA build of PyTorch (2.11 when last seen; the service pins 2.13.0, whose
# CUDA wheel is too large to carry), with the carried wheels beside it, and runs:
# the CUDA tests (resume exactness, the cuDNN path against the CPU within 1e-4, bf16), then
# the GPU rows of the Atari benchmark (8, 64 and 256 envs). Results land in $OUT.
set -euo pipefail
OUT="${OUT:-bench/results}"
mkdir -p "$OUT"
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD"
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$OUT/gpu.txt"
# --confcutdir: the tests of rlcore alone, without tests/conftest.py (the service's fixtures).
python3 -m pytest -q -p no:cacheprovider --confcutdir=tests/rlcore -rs tests/rlcore/test_gpu.py \
    "tests/rlcore/test_training.py::test_resume_continues_exactly" 2>&1 | tee "$OUT/gpu_tests.txt"
python3 bench/atari_speed.py --device cuda --envs 8,64,256 2>&1 | tee "$OUT/atari_gpu.txt"
cp bench/results/atari_speed_cuda.json "$OUT/" 2>/dev/null || true
