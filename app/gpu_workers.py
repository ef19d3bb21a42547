"""`rlserve worker --gpus`: one worker process per GPU, each pinned to its own device.

Each child sees exactly one GPU (`CUDA_VISIBLE_DEVICES`), runs one job at a time and
consumes the gpu queue, so a job never shares a GPU with another. This process only
supervises: SIGTERM or Ctrl-C reaches every child (whose running job checkpoints and is
re-queued), and when one child exits the others are stopped too, so that a process
manager (Docker, systemd) sees the failure and restarts the whole set.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from typing import Any


def visible_gpus(choice: str) -> list[str]:
    """The GPU ids `--gpus` names: `all` (every GPU torch can see) or a list such as `0,1`."""
    if choice != "all":
        ids = [part.strip() for part in choice.split(",") if part.strip()]
        if not ids:
            raise ValueError("--gpus takes `all` or GPU ids such as 0,1")
        return ids
    import torch  # only here: the other commands should not pay for importing it

    count = torch.cuda.device_count()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    # Under CUDA_VISIBLE_DEVICES torch numbers the visible GPUs from 0; the children must be
    # given the ids the variable used.
    ids = [part.strip() for part in visible.split(",")][:count] if visible else [str(i) for i in range(count)]
    return ids


def run_per_gpu(argv: Sequence[str], gpu_ids: Sequence[str], env: dict[str, str] | None = None) -> int:
    """Run `argv` once per GPU id with only that GPU visible; the first child's exit code."""
    base = dict(os.environ if env is None else env)
    children = [
        subprocess.Popen(list(argv), env={**base, "CUDA_VISIBLE_DEVICES": gpu}, start_new_session=True)
        for gpu in gpu_ids
    ]
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.2)
        code = next((child.returncode for child in children if child.returncode is not None), 0)
        for child in children:
            # A warm shutdown: the child's running job checkpoints and goes back to the queue.
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)
        for child in children:
            child.wait()
        return code
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
