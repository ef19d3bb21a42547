"""Flat float32 encodings of Gymnasium spaces, so that a model sees every env as a Box.

Discrete -> one-hot, MultiDiscrete -> its one-hots side by side, Tuple -> its parts'
encodings side by side, Box -> its entries flattened as float32.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from rlcore.envs.state import Array

__all__ = ["encode", "flat_box", "flat_size"]


def flat_size(space: spaces.Space[Any]) -> int:
    """The length of the flat encoding of one element of ``space``."""
    if isinstance(space, spaces.Discrete):
        return int(space.n)
    if isinstance(space, spaces.MultiDiscrete):
        return int(np.sum(space.nvec))
    if isinstance(space, spaces.Tuple):
        return sum(flat_size(part) for part in space.spaces)
    if isinstance(space, spaces.Box):
        return int(np.prod(space.shape))
    raise TypeError(f"no flat encoding for {space}")


def flat_box(space: spaces.Space[Any]) -> spaces.Box:
    """The float32 Box the encodings of ``space`` lie in."""
    low, high = _bounds(space)
    return spaces.Box(low, high, dtype=np.float32)


def _bounds(space: spaces.Space[Any]) -> tuple[Array, Array]:
    if isinstance(space, spaces.Box):
        return space.low.astype(np.float32).ravel(), space.high.astype(np.float32).ravel()
    if isinstance(space, spaces.Tuple):
        parts = [_bounds(part) for part in space.spaces]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    size = flat_size(space)
    return np.zeros(size, dtype=np.float32), np.ones(size, dtype=np.float32)


def _one_hot(values: Array, sizes: Array) -> Array:
    """(N, k) category indices, column j out of ``sizes[j]``, as (N, sum(sizes)) one-hots."""
    if values.size and (values.min() < 0 or np.any(values >= sizes)):
        raise ValueError(f"values {values!r} are outside their category counts {sizes!r}")
    out = np.zeros((len(values), int(sizes.sum())), dtype=np.float32)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rows = np.repeat(np.arange(len(values)), values.shape[1])
    out[rows, (values + offsets).ravel()] = 1.0
    return out


def encode(space: spaces.Space[Any], batch: Sequence[Any] | Array) -> Array:
    """Encode a batch of N elements of ``space`` (a sequence, or an array stacked on axis 0)
    as a float32 array of shape ``(N, flat_size(space))``."""
    if isinstance(space, spaces.Tuple):
        parts = [encode(part, [element[j] for element in batch]) for j, part in enumerate(space.spaces)]
        return np.concatenate(parts, axis=1) if parts else np.zeros((len(batch), 0), np.float32)
    if isinstance(space, spaces.Discrete):
        values = np.asarray(batch, dtype=np.int64).reshape(-1, 1) - int(space.start)
        return _one_hot(values, np.array([int(space.n)]))
    if isinstance(space, spaces.MultiDiscrete):
        values = np.asarray(batch, dtype=np.int64).reshape(len(batch), -1)
        return _one_hot(values - space.start.ravel(), space.nvec.ravel().astype(np.int64))
    if isinstance(space, spaces.Box):
        return np.asarray(batch, dtype=np.float32).reshape(len(batch), -1)
    raise TypeError(f"no flat encoding for {space}")
