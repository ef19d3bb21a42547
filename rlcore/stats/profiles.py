"""Performance profiles (rliable): the fraction of runs scoring above each threshold tau."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from rlcore.stats.aggregates import TaskScores, as_tasks
from rlcore.stats.bootstrap import (
    DEFAULT_REPS,
    Method,
    Seed,
    check_settings,
    generator,
    interval_from_replicates,
    stratified_counts,
)


@dataclass(frozen=True)
class Profile:
    """A profile ready to chart: at each of `taus`, the fraction of runs above it and its band."""

    taus: np.ndarray
    fractions: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    def to_dict(self) -> dict[str, list[float]]:
        """Plain lists, for JSON."""
        return {k: getattr(self, k).tolist() for k in ("taus", "fractions", "lower", "upper")}


def default_taus(scores: TaskScores, num: int = 51) -> np.ndarray:
    """`num` thresholds evenly from the lowest score to the highest of all runs."""
    tasks = as_tasks(scores)
    return np.linspace(min(t.min() for t in tasks), max(t.max() for t in tasks), num)


def performance_profile(
    scores: TaskScores,
    taus: ArrayLike | None = None,
    *,
    reps: int = DEFAULT_REPS,
    confidence: float = 0.95,
    method: Method = "percentile",
    seed: Seed = 0,
) -> Profile:
    """Fraction of runs with score > tau at each tau, per task then averaged over tasks, with
    stratified-bootstrap bands (rliable's run-score distribution).

    Averaging per task, as rliable does, weighs tasks equally whatever their number of runs.
    `taus` default: `default_taus(scores)`.
    """
    check_settings(reps, confidence, method)
    tasks = as_tasks(scores)
    grid = default_taus(tasks) if taus is None else np.asarray(taus, dtype=np.float64)
    if grid.ndim != 1 or grid.size == 0 or not np.all(np.isfinite(grid)):
        raise ValueError("taus must be a non-empty 1-D sequence of finite thresholds")
    above = [(t[:, None] > grid[None, :]).astype(np.float64) for t in tasks]  # (n_task, taus)
    fractions = np.mean([a.mean(axis=0) for a in above], axis=0)
    counts = stratified_counts([len(t) for t in tasks], reps, generator(seed))
    # A replicate's fraction above tau: its draw counts times the runs' above-tau indicators.
    replicates = np.mean([(c @ a) / len(a) for c, a in zip(counts, above, strict=True)], axis=0)
    lower, upper = interval_from_replicates(fractions, replicates, confidence, method)
    # "basic" intervals can step outside [0, 1]; a fraction cannot.
    return Profile(grid, fractions, np.clip(lower, 0, 1), np.clip(upper, 0, 1))
