"""Downsampling for display: buckets that keep their min and max, so spikes and collapses stay visible."""

from __future__ import annotations


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
