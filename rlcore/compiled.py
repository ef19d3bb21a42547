"""rlcore's compiled kernels (`csrc/`), built on first use: the recurrence's time loops
(`recurrence.cpp`) and PPO's loss for categorical policies (`ppo_loss.cpp`).

The build (about half a minute) runs once per machine and torch version: PyTorch's JIT
extension loader caches the library under `$TORCH_EXTENSIONS_DIR` (default
`~/.cache/torch_extensions`) and a file lock makes concurrent processes wait for one
build. `rlserve build-kernels` builds it ahead of time (`make install` and the Docker
image do). Where it cannot be built (no C++ compiler) or `RLCORE_COMPILED=0` is
set, `loops()` and `losses()` return None and training runs the Python code: the same
equations, slower, and rounded a little differently.
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

SOURCES = [Path(__file__).parent / "csrc" / name for name in ("recurrence.cpp", "ppo_loss.cpp")]


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
def _built() -> bool:
    """Build (or load the cached) library the first time; False where it is switched off or fails."""
    if os.environ.get("RLCORE_COMPILED", "1") == "0":
        return False
    from torch.utils import cpp_extension

    name = f"rlcore_compiled_{torch.backends.cpu.get_cpu_capability().lower()}"
    try:
        with _ninja_on_path():
            cpp_extension.load(name, [str(s) for s in SOURCES], extra_cflags=_flags(), is_python_module=False)
    except (OSError, RuntimeError, subprocess.CalledProcessError) as error:
        log.warning("the compiled kernels could not be built (%s); training runs the Python code", error)
        return False
    return True


def loops() -> Any | None:
    """`torch.ops.rlcore_recurrence` (gru_forward, gru_backward, lstm_forward, lstm_backward),
    or None where the library is switched off or cannot be built."""
    return torch.ops.rlcore_recurrence if _built() else None


def losses() -> Any | None:
    """`torch.ops.rlcore_losses` (categorical_ppo_loss), or None as for `loops()`."""
    return torch.ops.rlcore_losses if _built() else None


def applies_to(x: torch.Tensor) -> bool:
    """Whether the compiled kernels take x: a CPU tensor of float32 or float64, and a library."""
    return x.is_cpu and x.dtype in (torch.float32, torch.float64) and _built()


def for_tensor(x: torch.Tensor) -> Any | None:
    """The compiled loops where they apply to x, else None."""
    return loops() if applies_to(x) else None
