"""Downsampling for display: buckets that keep their min and max, so spikes and collapses stay visible."""

from __future__ import annotations

import numpy as np


def minmax_downsample(
    steps: list[int], values: list[float], max_points: int
) -> tuple[list[int], list[float]]:
    """At most `max_points` points of the series, keeping the first, the last, and each bucket's extremes.

    The series is cut into equal runs of consecutive points; each run keeps its lowest and
    highest point, in step order. A series that already fits is returned unchanged.
    """
    n = len(steps)
    if max_points <= 0 or n <= max_points:
        return list(steps), list(values)
    if max_points < 4:
        picked = sorted({values.index(min(values)), values.index(max(values))})[:max_points]
        return [steps[i] for i in picked], [values[i] for i in picked]
    buckets = (max_points - 2) // 2
    interior = n - 2
    keep: list[int] = [0]
    for b in range(buckets):
        lo = 1 + b * interior // buckets
        hi = 1 + (b + 1) * interior // buckets
        if lo >= hi:
            continue
        segment = range(lo, hi)
        i_min = min(segment, key=values.__getitem__)
        i_max = max(segment, key=values.__getitem__)
        keep.extend(sorted({i_min, i_max}))
    keep.append(n - 1)
    return [steps[i] for i in keep], [values[i] for i in keep]


def minmax_indices(values: np.ndarray, max_points: int) -> np.ndarray:
    """The positions `minmax_downsample` keeps, computed with numpy over a float array.

    Same buckets, same choice on ties (the first lowest and the first highest point of each
    bucket), so `steps[idx], values[idx]` equals `minmax_downsample(steps, values, max_points)`.
    """
    n = len(values)
    if max_points <= 0 or n <= max_points:
        return np.arange(n)
    if max_points < 4 or not np.isfinite(values).all():
        # Tiny budgets, or NaN/inf (where numpy's and Python's comparisons differ): the reference.
        kept, _ = minmax_downsample(list(range(n)), values.tolist(), max_points)
        return np.asarray(kept, dtype=np.intp)
    buckets = (max_points - 2) // 2
    interior = n - 2  # > 2 * buckets, so every bucket has at least two points
    starts = 1 + np.arange(buckets, dtype=np.int64) * interior // buckets
    sizes = np.diff(np.append(starts, 1 + interior))
    inner = values[1 : n - 1]
    offsets = starts - 1
    bucket = np.repeat(np.arange(buckets), sizes)
    position = np.arange(interior)
    sentinel = np.iinfo(np.int64).max
    lows = np.minimum.reduceat(inner, offsets)
    highs = np.maximum.reduceat(inner, offsets)
    i_min = np.minimum.reduceat(np.where(inner == lows[bucket], position, sentinel), offsets) + 1
    i_max = np.minimum.reduceat(np.where(inner == highs[bucket], position, sentinel), offsets) + 1
    pairs = np.stack([np.minimum(i_min, i_max), np.maximum(i_min, i_max)], axis=1)
    keep_second = np.stack([np.ones(buckets, dtype=bool), i_min != i_max], axis=1)
    return np.concatenate([[0], pairs[keep_second], [n - 1]]).astype(np.intp)
