"""Training checkpoints: model, optimiser, RNG, rollout and env state, written atomically.

Loaded with `torch.load(weights_only=True)`, so a checkpoint holds tensors and plain
containers only (`rlcore.envs.get_env_state` gives the env state in that form).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

CHECKPOINTS = "checkpoints"  # a run folder's subfolder that holds its checkpoint
LAST = "last.pt"


def save_checkpoint(folder: Path, payload: dict[str, Any]) -> Path:
    """Write `folder/last.pt` so that a crash mid-write never leaves a broken checkpoint."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LAST
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(folder: Path) -> dict[str, Any] | None:
    """The last checkpoint in `folder`, or None if there is none."""
    path = folder / LAST
    if not path.exists():
        return None
    return torch.load(path, weights_only=True, map_location="cpu")
