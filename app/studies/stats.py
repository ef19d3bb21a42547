"""Statistics over runs for the API: aggregates with intervals, the best of several cells,
probability of improvement, and performance profiles on min-max normalised scores.

Everything goes through `rlcore.stats` with a fixed bootstrap seed, so the same runs
always give the same intervals (a page refresh does not move them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from app import schemas
from app.run_scores import RunScores
from rlcore import stats

CONFIDENCE = 0.95
REPS = 2000
SEED = 0
METRICS = ("final", "mmer", "eval")
# Where every run of an env has the same score there is no min-max scale: they sit midway.
FLAT_NORMALISED = 0.5


def interval_out(interval: stats.Interval) -> schemas.Interval:
    return schemas.Interval(point=interval.point, low=interval.low, high=interval.high)


def values_of(runs: Sequence[RunScores], metric: str) -> list[float]:
    """The runs' scores named `metric`, leaving out the runs that have none."""
    return [v for v in (r.get(metric) for r in runs) if v is not None]


def aggregate(values: Sequence[float]) -> schemas.Aggregate:
    """n, and the mean and IQM with their stratified-bootstrap intervals (null without values)."""
    if not values:
        return schemas.Aggregate(n=0, mean=None, iqm=None)
    found = stats.aggregate_intervals(
        list(values), ("mean", "iqm"), reps=REPS, confidence=CONFIDENCE, seed=SEED
    )
    return schemas.Aggregate(n=len(values), mean=interval_out(found["mean"]), iqm=interval_out(found["iqm"]))


def score_aggregates(runs: Sequence[RunScores]) -> schemas.ScoreAggregates:
    """Final score, MMER and eval score aggregated over the runs."""
    return schemas.ScoreAggregates(**{metric: aggregate(values_of(runs, metric)) for metric in METRICS})


def best_of(candidates: Mapping[int, schemas.Aggregate]) -> int | None:
    """The key with the highest IQM (the first of equals); None when none has one."""
    scored = [(agg.iqm.point, -key) for key, agg in candidates.items() if agg.iqm is not None]
    return -max(scored)[1] if scored else None


def improvement(better: Sequence[float], other: Sequence[float]) -> schemas.Interval:
    """P(a run of `better` scores above a run of `other`), ties counting half, with its interval."""
    return interval_out(
        stats.probability_of_improvement_interval(
            list(better), list(other), reps=REPS, confidence=CONFIDENCE, seed=SEED
        )
    )


def bounds(values: Sequence[float]) -> tuple[float, float]:
    """The lowest and highest score: what min-max normalisation maps to 0 and 1."""
    return float(min(values)), float(max(values))


def normalised(values: Sequence[float], low: float, high: float) -> list[float]:
    """(x - low) / (high - low); FLAT_NORMALISED for every value when high == low."""
    if high <= low:
        return [FLAT_NORMALISED] * len(values)
    return [float(v) for v in stats.normalise(list(values), low, high)[0]]


def profile(
    tasks: Sequence[Sequence[float]], taus: np.ndarray
) -> tuple[list[float], list[float], list[float]]:
    """Fraction of runs above each tau (per task, averaged over tasks) with its band; empty without runs."""
    tasks = [t for t in tasks if len(t)]
    if not tasks:
        return [], [], []
    found = stats.performance_profile(
        [list(t) for t in tasks], taus, reps=REPS, confidence=CONFIDENCE, seed=SEED
    )
    return found.fractions.tolist(), found.lower.tolist(), found.upper.tolist()
