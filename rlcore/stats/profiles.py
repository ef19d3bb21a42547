"""Performance profiles (rliable): the fraction of runs scoring above each threshold tau."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from rlcore.stats.aggregates import TaskScores, as_tasks
from rlcore.stats.bootstrap import DEFAULT_REPS, Method, Seed, bootstrap_bounds


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
    tasks = as_tasks(scores)
    grid = default_taus(tasks) if taus is None else np.asarray(taus, dtype=np.float64)
    if grid.ndim != 1 or grid.size == 0 or not np.all(np.isfinite(grid)):
        raise ValueError("taus must be a non-empty 1-D sequence of finite thresholds")

    def fractions_above(runs: list[np.ndarray]) -> np.ndarray:
        # Each task (..., n) -> (..., taus); the taus axis goes first, as the bootstrap wants.
        per_task = [(t[..., None] > grid).mean(axis=-2) for t in runs]
        return np.moveaxis(np.mean(per_task, axis=0), -1, 0)

    lower, upper = bootstrap_bounds(
        tasks,
        fractions_above,
        reps=reps,
        confidence=confidence,
        method=method,
        seed=seed,
        per_rep=sum(len(t) for t in tasks) * grid.size,
    )
    # "basic" intervals can step outside [0, 1]; a fraction cannot.
    return Profile(grid, fractions_above(tasks), np.clip(lower, 0, 1), np.clip(upper, 0, 1))
