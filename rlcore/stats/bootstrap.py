"""Stratified bootstrap confidence intervals (rliable's StratifiedBootstrap), in plain numpy.

Stratified over tasks: each replicate resamples, with replacement, the runs of every task
on its own, so each task keeps its number of runs and its scale; with one task this is
the ordinary bootstrap. Intervals are percentile intervals by default ("basic" reflects
them about the point). Everything random comes from a numpy Generator made from `seed`,
so the same call gives the same interval.

Degenerate cases need no special code and are documented, not hidden: when every task
has one run, or all of a task's runs are equal, every replicate equals the point and the
interval has zero width. That says "no spread seen", not "no uncertainty": show n beside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, NamedTuple

import numpy as np

from rlcore.stats.aggregates import BatchStatistic, TaskScores, as_tasks, resolve_statistic

Method = Literal["percentile", "basic"]
Seed = int | np.random.Generator | None

DEFAULT_REPS = 2000
# Elements of one batch of resampled values: bounds memory whatever the reps and runs.
CHUNK_ELEMENTS = 4_000_000


class Interval(NamedTuple):
    """A point estimate and its confidence interval."""

    point: float
    low: float
    high: float


def generator(seed: Seed) -> np.random.Generator:
    """A Generator from a seed (None: fresh entropy, not reproducible) or the Generator itself."""
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def check_settings(reps: int, confidence: float, method: str) -> None:
    """ValueError naming the bad bootstrap setting."""
    if not isinstance(reps, int | np.integer) or reps < 1:
        raise ValueError(f"reps must be a positive integer, got {reps!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if method not in ("percentile", "basic"):
        raise ValueError(f"method must be 'percentile' or 'basic', got {method!r}")


def interval_from_replicates(
    point: float | np.ndarray, replicates: np.ndarray, confidence: float, method: Method = "percentile"
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds from bootstrap replicates along axis 0 (one bound per remaining element)."""
    tail = (1 - confidence) / 2 * 100
    q_low, q_high = np.percentile(replicates, [tail, 100 - tail], axis=0)
    if method == "basic":
        return 2 * np.asarray(point) - q_high, 2 * np.asarray(point) - q_low
    return q_low, q_high


def stratified_resample(tasks: Sequence[np.ndarray], reps: int, rng: np.random.Generator) -> list[np.ndarray]:
    """`reps` resamples of every task's runs, each task on its own: arrays of shape (reps, n_task)."""
    return [t[rng.integers(0, len(t), size=(reps, len(t)))] for t in tasks]


def stratified_counts(sizes: Sequence[int], reps: int, rng: np.random.Generator) -> list[np.ndarray]:
    """How often each run is drawn in each replicate, per task: (reps, n_task) counts summing to n_task.

    The same resampling as `stratified_resample`, for statistics that are linear in the draws
    (fractions above a threshold, pairwise comparisons), which then cost a matrix product.
    """
    return [rng.multinomial(n, np.full(n, 1.0 / n), size=reps) for n in sizes]


def _batches(reps: int, per_rep: int) -> list[int]:
    size = max(1, CHUNK_ELEMENTS // max(per_rep, 1))
    return [min(size, reps - start) for start in range(0, reps, size)]


def aggregate_intervals(
    scores: TaskScores,
    statistics: Sequence[str] | Mapping[str, BatchStatistic] = ("mean", "median", "iqm"),
    *,
    reps: int = DEFAULT_REPS,
    confidence: float = 0.95,
    method: Method = "percentile",
    seed: Seed = 0,
) -> dict[str, Interval]:
    """Point and stratified-bootstrap interval of each statistic, all on the same replicates.

    `statistics`: names from AGGREGATES, or a mapping of name to batch statistic.
    """
    check_settings(reps, confidence, method)
    tasks = as_tasks(scores)
    named = (
        dict(statistics)
        if isinstance(statistics, Mapping)
        else {name: resolve_statistic(name) for name in statistics}
    )
    if not named:
        raise ValueError("statistics: none asked for")
    rng = generator(seed)
    runs = sum(len(t) for t in tasks)
    replicates: dict[str, list[np.ndarray]] = {name: [] for name in named}
    for batch in _batches(reps, runs):
        resampled = stratified_resample(tasks, batch, rng)
        for name, fn in named.items():
            replicates[name].append(np.asarray(fn(resampled), dtype=np.float64))
    result = {}
    for name, fn in named.items():
        point = float(fn(tasks))
        low, high = interval_from_replicates(point, np.concatenate(replicates[name]), confidence, method)
        result[name] = Interval(point, float(low), float(high))
    return result


def aggregate_interval(
    scores: TaskScores,
    statistic: str | BatchStatistic = "iqm",
    *,
    reps: int = DEFAULT_REPS,
    confidence: float = 0.95,
    method: Method = "percentile",
    seed: Seed = 0,
) -> Interval:
    """Point and stratified-bootstrap interval of one statistic ("iqm" by default)."""
    fn = resolve_statistic(statistic)
    return aggregate_intervals(scores, {"s": fn}, reps=reps, confidence=confidence, method=method, seed=seed)[
        "s"
    ]


def _wins(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(n, m): 1 where x_i > y_j, 1/2 where equal, 0 below."""
    diff = x[:, None] - y[None, :]
    return (diff > 0) + 0.5 * (diff == 0)


def _pair_tasks(x: TaskScores, y: TaskScores) -> tuple[list[np.ndarray], list[np.ndarray]]:
    xs, ys = as_tasks(x, "x"), as_tasks(y, "y")
    if isinstance(x, Mapping) and isinstance(y, Mapping):
        if set(x) != set(y):
            raise ValueError(f"x and y: different tasks ({sorted(x)} vs {sorted(y)})")
        ys = as_tasks({k: y[k] for k in x}, "y")  # pair tasks by name, not by order
    if len(xs) != len(ys):
        raise ValueError(f"x and y: {len(xs)} tasks vs {len(ys)}")
    return xs, ys


def probability_of_improvement(x: TaskScores, y: TaskScores) -> float:
    """P(X > Y): per task, the chance a random run of x beats one of y (ties count 1/2), averaged over tasks.

    Per task this is the Mann-Whitney U statistic of x over y divided by n*m, as in rliable.
    """
    xs, ys = _pair_tasks(x, y)
    return float(np.mean([_wins(a, b).mean() for a, b in zip(xs, ys, strict=True)]))


def probability_of_improvement_interval(
    x: TaskScores,
    y: TaskScores,
    *,
    reps: int = DEFAULT_REPS,
    confidence: float = 0.95,
    method: Method = "percentile",
    seed: Seed = 0,
) -> Interval:
    """P(X > Y) with a bootstrap interval: x's and y's runs resampled independently, each within its tasks."""
    check_settings(reps, confidence, method)
    xs, ys = _pair_tasks(x, y)
    rng = generator(seed)
    count_x = stratified_counts([len(a) for a in xs], reps, rng)
    count_y = stratified_counts([len(b) for b in ys], reps, rng)
    per_task = [
        # A replicate's U/(n m) is its draw counts weighting the fixed pairwise win matrix.
        ((cx @ _wins(a, b)) * cy).sum(axis=1) / (len(a) * len(b))
        for a, b, cx, cy in zip(xs, ys, count_x, count_y, strict=True)
    ]
    replicates = np.mean(per_task, axis=0)
    point = probability_of_improvement(xs, ys)
    low, high = interval_from_replicates(point, replicates, confidence, method)
    return Interval(point, float(low), float(high))
