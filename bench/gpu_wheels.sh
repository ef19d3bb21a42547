#!/usr/bin/env bash
# Run here, before the GPU checks: the device machine reaches no package index, and its image
# (Python 3.12, PyTorch, numpy, onnx, onnxruntime, safetensors, scipy, pyyaml, pytest; see
# /work/.library/device/KINDS.md) lacks what rlcore and its tests need besides. This puts
# those wheels (Python 3.12, manylinux x86_64, the versions installed here) in .whl/, which
# git ignores and the device tool's `carry` takes along; bench/gpu_checks.sh installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -rf .whl && mkdir .whl
pinned() { .venv/bin/python -m pip show "$1" | awk -v n="$1" '/^Version:/ {print n "==" $2}'; }
.venv/bin/python -m pip download -q --no-deps --only-binary=:all: -d .whl \
    --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform any \
    "$(pinned gymnasium)" "$(pinned farama-notifications)" "$(pinned ale-py)" \
    "$(pinned pydantic)" "$(pinned pydantic_core)" "$(pinned annotated-types)" \
    "$(pinned typing-inspection)" "$(pinned pytest-timeout)"
du -sh .whl && ls .whl
