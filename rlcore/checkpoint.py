"""Training checkpoints: model, optimiser, RNG, rollout and env state, written atomically.

Loaded with `torch.load(weights_only=True)`, so a checkpoint can hold tensors and plain
containers only; the env state (numpy arrays, generator states) travels as JSON text.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

LAST = "last.pt"


def _encode(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype), "shape": value.shape}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {key: _encode(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(item) for item in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return np.array(value["__ndarray__"], dtype=value["dtype"]).reshape(value["shape"])
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


def dumps_state(state: dict[str, Any]) -> str:
    """JSON text for a state dict that may hold numpy arrays; exact for floats and ints."""
    return json.dumps(_encode(state))


def loads_state(text: str) -> dict[str, Any]:
    return _decode(json.loads(text))


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
