"""Stratified bootstrap confidence intervals (rliable's StratifiedBootstrap) by `scipy.stats.bootstrap`.

Stratified over tasks: each replicate resamples, with replacement, the runs of every task
on its own, so each task keeps its number of runs and its scale; with one task this is
the ordinary bootstrap. That is what `scipy.stats.bootstrap` does with one sample per task
and `paired=False`. Intervals are percentile intervals by default ("basic" reflects them
about the point). Everything random comes from a numpy Generator made from `seed`, so the
same call gives the same interval.

Degenerate cases are documented, not hidden: when every task has one run, or all of a
task's runs are equal, every replicate equals the point and the interval has zero width.
That says "no spread seen", not "no uncertainty": show n beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Literal, NamedTuple

import numpy as np

from rlcore.stats.aggregates import BatchStatistic, TaskScores, as_tasks, resolve_statistic

Method = Literal["percentile", "basic"]
Seed = int | np.random.Generator | None

DEFAULT_REPS = 2000
# Values one batch of resamples may touch: bounds memory whatever the reps and runs.
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
    """ValueError naming the bad bootstrap setting (in our names, not scipy's)."""
    # One replicate has no spread (and scipy's standard error of it warns).
    if not isinstance(reps, int | np.integer) or reps < 2:
        raise ValueError(f"reps must be an integer of at least 2, got {reps!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    # No BCa: it is NaN, with warnings, on the all-equal scores few-seed studies often have.
    if method not in ("percentile", "basic"):
        raise ValueError(f"method must be 'percentile' or 'basic', got {method!r}")


def bootstrap_bounds(
    samples: Sequence[np.ndarray],
    statistic: Callable[[list[np.ndarray]], np.ndarray],
    *,
    reps: int,
    confidence: float,
    method: Method,
    seed: Seed,
    per_rep: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of `statistic` by `scipy.stats.bootstrap`, each sample resampled on its own.

    `statistic` maps the samples, each (..., n_i) and resampled along the last axis, to an
    array whose last axes are their leading ones, after any of its own: (k, ...) gives k
    statistics on the same replicates. `per_rep`: values one replicate touches, to size
    scipy's batches. A sample of one value (1-D) is the same in every resample; scipy refuses
    to resample it, so it is held fixed instead.
    """
    check_settings(reps, confidence, method)
    samples = list(samples)
    varied = [i for i, s in enumerate(samples) if s.shape[-1] > 1]
    if not varied:
        point = np.asarray(statistic(samples), dtype=np.float64)
        return point, point

    def on_resamples(*drawn: np.ndarray, axis: int = -1) -> np.ndarray:
        # scipy passes axis=-1, the axis the statistics reduce.
        lead = drawn[0].shape[:-1]
        by_index = dict(zip(varied, drawn, strict=True))
        full = [
            by_index[i] if i in by_index else np.broadcast_to(s, lead + s.shape)
            for i, s in enumerate(samples)
        ]
        return statistic(full)

    import scipy.stats  # a second to import: see aggregates.trim_mean

    result = scipy.stats.bootstrap(
        [samples[i] for i in varied],
        on_resamples,
        n_resamples=reps,
        batch=max(1, CHUNK_ELEMENTS // max(per_rep, 1)),
        vectorized=True,
        paired=False,
        axis=-1,
        confidence_level=confidence,
        method=method,
        rng=generator(seed),
    )
    return np.asarray(result.confidence_interval.low), np.asarray(result.confidence_interval.high)


def stratified_resample(tasks: Sequence[np.ndarray], reps: int, rng: np.random.Generator) -> list[np.ndarray]:
    """`reps` resamples of every task's runs, each task on its own: arrays of shape (reps, n_task).

    The draws `scipy.stats.bootstrap` makes for the intervals, for looking at them.
    """
    return [t[rng.integers(0, len(t), size=(reps, len(t)))] for t in tasks]


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
    tasks = as_tasks(scores)
    named = (
        dict(statistics)
        if isinstance(statistics, Mapping)
        else {name: resolve_statistic(name) for name in statistics}
    )
    if not named:
        raise ValueError("statistics: none asked for")

    def stacked(resampled: list[np.ndarray]) -> np.ndarray:
        return np.stack([np.asarray(fn(resampled), dtype=np.float64) for fn in named.values()])

    runs = sum(len(t) for t in tasks)
    lows, highs = bootstrap_bounds(
        tasks, stacked, reps=reps, confidence=confidence, method=method, seed=seed, per_rep=runs * len(named)
    )
    points = stacked(tasks)
    return {
        name: Interval(float(p), float(lo), float(hi))
        for name, p, lo, hi in zip(named, points, lows, highs, strict=True)
    }


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


def _pair_tasks(x: TaskScores, y: TaskScores) -> tuple[list[np.ndarray], list[np.ndarray]]:
    xs, ys = as_tasks(x, "x"), as_tasks(y, "y")
    if isinstance(x, Mapping) and isinstance(y, Mapping):
        if set(x) != set(y):
            raise ValueError(f"x and y: different tasks ({sorted(x)} vs {sorted(y)})")
        ys = as_tasks({k: y[k] for k in x}, "y")  # pair tasks by name, not by order
    if len(xs) != len(ys):
        raise ValueError(f"x and y: {len(xs)} tasks vs {len(ys)}")
    return xs, ys


def _win_rate(xs: Sequence[np.ndarray], ys: Sequence[np.ndarray]) -> np.ndarray:
    """Per task, P(x > y) over all pairs of runs (last axes; ties 1/2), averaged over tasks.

    Per task that is the Mann-Whitney U over n m, counted directly: `scipy.stats.mannwhitneyu`
    would also work out a p-value for every resample.
    """
    per_task = []
    for a, b in zip(xs, ys, strict=True):
        diff = a[..., :, None] - b[..., None, :]
        per_task.append(((diff > 0) + 0.5 * (diff == 0)).mean(axis=(-2, -1)))
    return np.mean(per_task, axis=0)


def probability_of_improvement(x: TaskScores, y: TaskScores) -> float:
    """P(X > Y): the chance a random run of x beats one of y (ties 1/2), per task then averaged (rliable)."""
    return float(_win_rate(*_pair_tasks(x, y)))


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
    xs, ys = _pair_tasks(x, y)
    k = len(xs)
    low, high = bootstrap_bounds(
        xs + ys,  # every task of either side is a sample of its own
        lambda drawn: _win_rate(drawn[:k], drawn[k:]),
        reps=reps,
        confidence=confidence,
        method=method,
        seed=seed,
        per_rep=sum(len(a) * len(b) for a, b in zip(xs, ys, strict=True)),
    )
    return Interval(float(_win_rate(xs, ys)), float(low), float(high))
