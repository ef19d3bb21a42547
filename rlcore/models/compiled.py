"""The recurrence's time loops compiled from C++ (`csrc/recurrence.cpp`), built on first use.

The build (about half a minute) runs once per machine and torch version: PyTorch's JIT
extension loader caches the library under `$TORCH_EXTENSIONS_DIR` (default
`~/.cache/torch_extensions`) and a file lock makes concurrent processes wait for one
build. `rlserve build-recurrence` builds it ahead of time (`make install` and the Docker
image do). Where it cannot be built (no C++ compiler) or `RLCORE_COMPILED=0` is
set, `loops()` returns None and the recurrence runs its Python loops: the same equations,
slower, and rounded a little differently.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import subprocess
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger("rlserve.compiled")

SOURCE = Path(__file__).parent / "csrc" / "recurrence.cpp"


def _flags() -> list[str]:
    # Vector units by torch's own detection of this CPU, not -march=native: the cached
    # library is then correct on any host that reports the same capability. AVX-512
    # (the four extensions torch requires for it) runs the gate loops 16 floats wide:
    # setting (a) of bench/train_speed.py trains 2-4% faster than with AVX2 code.
    capability = torch.backends.cpu.get_cpu_capability()
    avx2 = ["-mavx2", "-mfma"]
    vector = {"AVX2": avx2, "AVX512": [*avx2, "-mavx512f", "-mavx512vl", "-mavx512dq", "-mavx512bw"]}
    # Without these GCC keeps floor() a library call (it may raise a floating-point
    # exception, which nothing here reads), and a loop with a call is not vectorised.
    return ["-O3", "-fno-trapping-math", "-fno-math-errno", *vector.get(capability, [])]


@contextlib.contextmanager
def _ninja_on_path() -> Iterator[None]:
    """The JIT build runs `ninja`; the one pip installs sits beside this Python, not always on PATH."""
    path = os.environ.get("PATH", "")
    if shutil.which("ninja") is None:
        os.environ["PATH"] = os.pathsep.join([sysconfig.get_path("scripts"), path])
    try:
        yield
    finally:
        os.environ["PATH"] = path


@functools.cache
def loops() -> Any | None:
    """`torch.ops.rlcore_recurrence` (gru_forward, gru_backward, lstm_forward, lstm_backward),
    building it the first time; None where it is switched off or cannot be built."""
    if os.environ.get("RLCORE_COMPILED", "1") == "0":
        return None
    from torch.utils import cpp_extension

    name = f"rlcore_recurrence_{torch.backends.cpu.get_cpu_capability().lower()}"
    try:
        with _ninja_on_path():
            cpp_extension.load(name, [str(SOURCE)], extra_cflags=_flags(), is_python_module=False)
    except (OSError, RuntimeError, subprocess.CalledProcessError) as error:
        log.warning("the compiled recurrence could not be built (%s); using the Python loops", error)
        return None
    return torch.ops.rlcore_recurrence


def for_tensor(x: torch.Tensor) -> Any | None:
    """The compiled loops where they apply to x (a CPU tensor of float32 or float64), else None."""
    if not x.is_cpu or x.dtype not in (torch.float32, torch.float64):
        return None
    return loops()
