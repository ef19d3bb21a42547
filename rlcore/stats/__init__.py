"""Few-seed RL statistics after rliable (Agarwal et al., NeurIPS 2021), on numpy and scipy.stats.

- scores: one number per run from its curve (final score, MMER, eval) and normalisation.
- aggregates: mean, median, IQM and optimality gap over runs pooled across tasks.
- bootstrap: stratified bootstrap intervals of those, and the probability of improvement.
- profiles: performance profiles with bootstrap bands.
- bands: the compare page's per-step band over seeds' curves (bootstrap or t, clipped).
"""

from rlcore.stats.aggregates import (
    AGGREGATES,
    BatchStatistic,
    TaskScores,
    aggregate,
    aggregate_iqm,
    aggregate_mean,
    aggregate_median,
    aggregate_optimality_gap,
    as_tasks,
    trim_mean,
)
from rlcore.stats.bands import Band, curve_band, t_critical
from rlcore.stats.bootstrap import (
    Interval,
    aggregate_interval,
    aggregate_intervals,
    probability_of_improvement,
    probability_of_improvement_interval,
    stratified_resample,
)
from rlcore.stats.profiles import Profile, default_taus, performance_profile
from rlcore.stats.scores import eval_score, final_score, mmer, normalise, run_bounds

__all__ = [
    "AGGREGATES",
    "Band",
    "BatchStatistic",
    "Interval",
    "Profile",
    "TaskScores",
    "aggregate",
    "aggregate_interval",
    "aggregate_intervals",
    "aggregate_iqm",
    "aggregate_mean",
    "aggregate_median",
    "aggregate_optimality_gap",
    "as_tasks",
    "curve_band",
    "default_taus",
    "eval_score",
    "final_score",
    "mmer",
    "normalise",
    "performance_profile",
    "probability_of_improvement",
    "probability_of_improvement_interval",
    "run_bounds",
    "stratified_resample",
    "t_critical",
    "trim_mean",
]
