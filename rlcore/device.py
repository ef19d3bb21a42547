"""Choosing the torch device at run time, and mixed precision on it."""

from __future__ import annotations

import contextlib

import torch


def resolve_device(name: str) -> torch.device:
    """`auto` means CUDA when present; asking for CUDA where there is none is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was requested but no CUDA device is available")
    return torch.device(name)


def autocast(device: torch.device | str, enabled: bool) -> contextlib.AbstractContextManager[object]:
    """bf16 autocast on CUDA when `enabled`; a no-op context on the CPU or when disabled.

    Wrap the rollout's forward passes and the update's forward and loss (not
    `backward`, which follows the forward's dtypes by itself). bf16 keeps float32's
    range, so no gradient scaler is needed. `ActorCritic` runs only its encoder (the
    convolutions, where the time goes) in bf16 and the memory core and heads in
    float32. On the CPU bf16 is slower than float32 for these networks, so it is left
    off there.
    """
    device = torch.device(device)
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
