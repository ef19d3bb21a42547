"""Choosing the torch device at run time."""

from __future__ import annotations

import torch


def resolve_device(name: str) -> torch.device:
    """`auto` means CUDA when present; asking for CUDA where there is none is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was requested but no CUDA device is available")
    return torch.device(name)
