#!/usr/bin/env bash
# The GPU checks, as one short script for a machine with CUDA (the device tool runs it in
# the repository root). Installs a CUDA build of torch 2.13.0 from PyPI into a fresh venv,
# then: the CUDA tests (resume exactness, cuDNN path against the CPU within 1e-4, bf16),
# and the GPU rows of the Atari benchmark (8, 64 and 256 envs). Results land in $OUT.
set -euo pipefail
OUT="${OUT:-bench/results}"
mkdir -p "$OUT"
python3 -m venv /tmp/gpu-venv
/tmp/gpu-venv/bin/python -m pip install -q "torch==2.13.0"
/tmp/gpu-venv/bin/python -m pip install -q -e '.[test]'
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
/tmp/gpu-venv/bin/python -m pytest -q -p no:cacheprovider tests/rlcore/test_gpu.py \
    "tests/rlcore/test_training.py::test_resume_continues_exactly" 2>&1 | tee "$OUT/gpu_tests.txt"
/tmp/gpu-venv/bin/python bench/atari_speed.py --device cuda --envs 8,64,256 2>&1 | tee "$OUT/atari_gpu.txt"
cp bench/results/atari_speed_cuda.json "$OUT/" 2>/dev/null || true
