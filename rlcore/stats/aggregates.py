"""Aggregate scores of many runs, possibly over several tasks, into one number (rliable's).

Scores come as `TaskScores`: one task's runs as a 1-D array-like of numbers, or several
tasks as a list (or a mapping of task name to) 1-D array-likes; tasks may have different
numbers of runs. A 2-D array is refused rather than guessed at: rliable's layout is
runs x tasks, so pass `list(matrix.T)`.

Each statistic has a batch form over `list[np.ndarray]` whose arrays are (..., runs of that
task): the bootstrap calls it on (batch, runs) resamples, the point estimate on the runs
themselves, so both go through the same code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

TaskScores = ArrayLike | Sequence[ArrayLike] | Mapping[str, ArrayLike]
# Per-task arrays of shape (..., n_task) -> statistic of shape (...).
BatchStatistic = Callable[[list[np.ndarray]], np.ndarray]


def as_tasks(scores: TaskScores, name: str = "scores") -> list[np.ndarray]:
    """The scores as one finite 1-D float array per task; ValueError naming `name` otherwise."""
    if isinstance(scores, Mapping):
        parts = list(scores.values())
    elif isinstance(scores, np.ndarray):
        if scores.ndim != 1:
            raise ValueError(
                f"{name}: a {scores.ndim}-D array is ambiguous; pass one task's runs as a 1-D array "
                "or a list of per-task 1-D arrays (rliable's runs x tasks matrix: list(matrix.T))"
            )
        parts = [scores]
    elif isinstance(scores, Sequence) and not isinstance(scores, str):
        if len(scores) == 0:
            raise ValueError(f"{name}: no runs")
        scalar = [np.ndim(s) == 0 for s in scores]
        if all(scalar):
            parts = [scores]
        elif not any(scalar):
            parts = list(scores)
        else:
            raise ValueError(f"{name}: mixes numbers and per-task sequences")
    else:
        raise ValueError(f"{name}: expected a sequence of scores, got {type(scores).__name__}")
    if not parts:
        raise ValueError(f"{name}: no tasks")
    tasks = []
    for i, part in enumerate(parts):
        arr = np.asarray(part, dtype=np.float64)
        if arr.ndim != 1:
            raise ValueError(f"{name}[{i}]: expected a 1-D sequence of run scores, got shape {arr.shape}")
        if arr.size == 0:
            raise ValueError(f"{name}[{i}]: a task with no runs")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name}[{i}]: scores must be finite (drop runs without a score)")
        tasks.append(arr)
    return tasks


def trim_mean(a: ArrayLike, proportion: float = 0.25, axis: int = -1) -> np.ndarray:
    """`scipy.stats.trim_mean`: the mean after cutting `int(proportion * n)` values off each end.

    The cut is truncated, not fractional: n=8 at 0.25 drops 2 each side (IQM of 1..8 is the
    mean of 3..6 = 4.5); n=5 drops 1 each side; n=3 drops none (the plain mean).
    """
    # scipy returns NaN (with a warning) for these rather than refusing them.
    if not 0 <= proportion < 0.5:
        raise ValueError(f"proportion must be in [0, 0.5), got {proportion}")
    arr = np.asarray(a, dtype=np.float64)
    if arr.shape[axis] == 0:
        raise ValueError("trim_mean of no values")
    # Imported here, not at the top: it takes a second, and the CLI, API and worker start without it.
    import scipy.stats

    return scipy.stats.trim_mean(arr, proportion, axis=axis)


def _pooled(tasks: list[np.ndarray]) -> np.ndarray:
    return tasks[0] if len(tasks) == 1 else np.concatenate(tasks, axis=-1)


def batch_mean(tasks: list[np.ndarray]) -> np.ndarray:
    """Mean over tasks of each task's mean over runs (rliable's aggregate_mean)."""
    return np.mean([t.mean(axis=-1) for t in tasks], axis=0)


def batch_median(tasks: list[np.ndarray]) -> np.ndarray:
    """Median of all runs of all tasks pooled.

    rliable takes the median of the per-task means instead, which for one task is just its
    mean; pooling keeps the median meaningful for the one-task cells that are most studies.
    """
    return np.median(_pooled(tasks), axis=-1)


def batch_iqm(tasks: list[np.ndarray]) -> np.ndarray:
    """Interquartile mean of all runs of all tasks pooled: `trim_mean(pooled, 0.25)`, as rliable."""
    return trim_mean(_pooled(tasks), 0.25, axis=-1)


def batch_optimality_gap(tasks: list[np.ndarray], gamma: float = 1.0) -> np.ndarray:
    """How far runs fall short of `gamma` on average, scores above it counting as `gamma` (rliable)."""
    return gamma - np.minimum(_pooled(tasks), gamma).mean(axis=-1)


AGGREGATES: dict[str, BatchStatistic] = {
    "mean": batch_mean,
    "median": batch_median,
    "iqm": batch_iqm,
    # On normalised scores (1 = the best bound); pass a lambda for another gamma.
    "optimality_gap": batch_optimality_gap,
}


def resolve_statistic(statistic: str | BatchStatistic) -> BatchStatistic:
    """A batch statistic by name (a key of AGGREGATES) or as given."""
    if callable(statistic):
        return statistic
    try:
        return AGGREGATES[statistic]
    except KeyError:
        raise ValueError(f"statistic: expected one of {sorted(AGGREGATES)}, got {statistic!r}") from None


def aggregate(scores: TaskScores, statistic: str | BatchStatistic = "iqm") -> float:
    """One aggregate ("mean", "median", "iqm", "optimality_gap" or a batch statistic) of the scores."""
    return float(resolve_statistic(statistic)(as_tasks(scores)))


def aggregate_mean(scores: TaskScores) -> float:
    """Mean over tasks of the mean over runs."""
    return aggregate(scores, batch_mean)


def aggregate_median(scores: TaskScores) -> float:
    """Median of all runs pooled over tasks."""
    return aggregate(scores, batch_median)


def aggregate_iqm(scores: TaskScores) -> float:
    """Interquartile mean of all runs pooled over tasks."""
    return aggregate(scores, batch_iqm)


def aggregate_optimality_gap(scores: TaskScores, gamma: float = 1.0) -> float:
    """Mean shortfall below `gamma` of all runs pooled over tasks."""
    return float(batch_optimality_gap(as_tasks(scores), gamma))
