"""One number per run from its curve, and scores normalised between bounds.

A curve is what the API serves for `charts/episodic_return`: the steps of the trainer's
per-update points and, at each, the mean return of the episodes that ended in that update;
optionally `charts/episodes` at the same points, the number of those episodes, so that
averages over points are averages over episodes (a thinned point folds many updates and
carries all their episodes). Points whose return is not finite are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from rlcore.stats.aggregates import TaskScores, as_tasks


def _curve(
    steps: ArrayLike, returns: ArrayLike, episodes: ArrayLike | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps, returns and episode weights, in step order, finite returns with episodes only."""
    s = np.asarray(steps, dtype=np.float64)
    r = np.asarray(returns, dtype=np.float64)
    w = np.ones_like(r) if episodes is None else np.asarray(episodes, dtype=np.float64)
    if s.ndim != 1 or s.shape != r.shape or r.shape != w.shape:
        raise ValueError(
            f"steps, returns and episodes must be 1-D of one length, got {s.shape}, {r.shape}, {w.shape}"
        )
    if np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ValueError("episodes must be finite counts >= 0")
    keep = np.isfinite(r) & np.isfinite(s) & (w > 0)
    order = np.argsort(s[keep], kind="stable")
    return s[keep][order], r[keep][order], w[keep][order]


def final_score(
    steps: ArrayLike,
    returns: ArrayLike,
    episodes: ArrayLike | None = None,
    *,
    fraction: float = 0.1,
    total_steps: float | None = None,
    min_points: int = 1,
) -> float | None:
    """Mean episodic return over the last `fraction` of training, by env steps.

    With T = `total_steps` (default: the curve's last step), the window is the points with
    step > (1 - fraction) * T, and the score their mean return weighted by `episodes` (the
    mean over the episodes they report). When the window holds fewer than `min_points`
    points (a short or sparsely reported run, or one stopped before T), it is widened back
    to the last `min_points` points, or all of them if fewer. None if no point has a return.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if min_points < 1:
        raise ValueError(f"min_points must be at least 1, got {min_points}")
    s, r, w = _curve(steps, returns, episodes)
    if len(s) == 0:
        return None
    end = s[-1] if total_steps is None else float(total_steps)
    start = int(np.searchsorted(s, (1 - fraction) * end, side="right"))
    start = min(start, max(len(s) - min_points, 0))
    return float(np.average(r[start:], weights=w[start:]))


def mmer(
    steps: ArrayLike,
    returns: ArrayLike,
    episodes: ArrayLike | None = None,
    *,
    min_episodes: float = 1,
) -> float | None:
    """Maximum mean episodic return (POPGym's MMER): the best mean return of any reporting point.

    Each point's return is already the mean over the episodes it reports. A point with
    few episodes is a noisy mean and a max over noisy means is biased upwards, so with
    `min_episodes` > 1 consecutive points are pooled, from the start, until each group holds
    at least that many episodes (a trailing group short of it is dropped unless it is the
    only one), and the max is taken over the groups' episode-weighted means. Without
    `episodes` each point counts as one episode. None if no point has a return.
    """
    if min_episodes <= 0:
        raise ValueError(f"min_episodes must be positive, got {min_episodes}")
    _, r, w = _curve(steps, returns, episodes)
    if len(r) == 0:
        return None
    groups: list[tuple[float, float]] = []
    total = weight = 0.0
    for value, count in zip(r, w, strict=True):
        total += value * count
        weight += count
        if weight >= min_episodes:
            groups.append((total, weight))
            total = weight = 0.0
    if not groups:
        groups.append((total, weight))
    return float(max(t / c for t, c in groups))


def eval_score(steps: ArrayLike, values: ArrayLike) -> float | None:
    """The last evaluation's return (`eval/episodic_return` at its latest step); None if none."""
    _, v, _ = _curve(steps, values, None)
    return float(v[-1]) if len(v) else None


def run_bounds(scores: TaskScores) -> list[tuple[float, float]]:
    """(min, max) of each task's runs: bounds for normalising a study by its own runs."""
    return [(float(t.min()), float(t.max())) for t in as_tasks(scores)]


def normalise(
    scores: TaskScores,
    low: float | Sequence[float],
    high: float | Sequence[float],
) -> list[np.ndarray]:
    """Min-max normalised scores, (x - low) / (high - low), per task: 0 at `low`, 1 at `high`.

    `low`/`high`: one bound for all tasks or one per task (e.g. a random policy's and the
    best known return, or `run_bounds` of the study's runs). Scores outside the bounds map
    outside [0, 1]; they are not clipped.
    """
    tasks = as_tasks(scores)
    lows, highs = (np.asarray(b, dtype=np.float64) for b in (low, high))
    lows, highs = (np.full(len(tasks), b) if b.ndim == 0 else b for b in (lows, highs))
    if lows.shape != (len(tasks),) or highs.shape != (len(tasks),):
        raise ValueError(f"low and high: one bound or one per task ({len(tasks)}) expected")
    out = []
    for i, (t, lo, hi) in enumerate(zip(tasks, lows, highs, strict=True)):
        if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
            raise ValueError(f"bounds of task {i}: high ({hi}) must be finite and above low ({lo})")
        out.append((t - lo) / (hi - lo))
    return out
