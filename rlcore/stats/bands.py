"""The compare page's band: at each step, a statistic of several seeds' curves and its interval.

Input is a (runs x steps) array of the runs' values on a common grid, NaN where a run has
no value (not reached yet, or not reported there; any non-finite value counts as none);
each step uses the runs it has. Bands are clipped to what the runs reached there (their
min and max): a band of 3 CartPole seeds near 500 does not promise returns above 500. A
step with one run has a zero-width band at its value; a step with none is NaN throughout
(`to_dict` turns NaN into None, for JSON).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from rlcore.stats.aggregates import trim_mean
from rlcore.stats.bootstrap import Seed, bootstrap_bounds, check_settings, generator

BandStatistic = Literal["mean", "iqm", "median"]
BandMethod = Literal["bootstrap", "t"]


@dataclass(frozen=True)
class Band:
    """Per step: the statistic (`center`), the band's bounds and the number of runs `n` there."""

    center: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    n: np.ndarray

    def to_dict(self) -> dict[str, list[float | None] | list[int]]:
        """Plain lists for JSON, None where no run has a value."""

        def plain(a: np.ndarray) -> list[float | None]:
            return [None if np.isnan(v) else float(v) for v in a]

        return {
            "center": plain(self.center),
            "lower": plain(self.lower),
            "upper": plain(self.upper),
            "n": self.n.tolist(),
        }


def t_critical(df: float, confidence: float = 0.95) -> float:
    """The t with P(|T| <= t) = `confidence` for Student's t with `df` degrees of freedom (4, 95%: 2.776)."""
    if not df > 0:
        raise ValueError(f"df must be positive, got {df}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    import scipy.stats  # a second to import: see aggregates.trim_mean

    return float(scipy.stats.t.ppf((1 + confidence) / 2, df))


def _statistic(values: np.ndarray, statistic: BandStatistic, axis: int) -> np.ndarray:
    if statistic == "iqm":
        return trim_mean(values, 0.25, axis=axis)
    return np.median(values, axis=axis) if statistic == "median" else np.mean(values, axis=axis)


def curve_band(
    values: ArrayLike,
    *,
    statistic: BandStatistic = "mean",
    method: BandMethod = "bootstrap",
    confidence: float = 0.95,
    reps: int = 1000,
    seed: Seed = 0,
    clip: bool = True,
) -> Band:
    """Statistic of the runs at each step with a `confidence` band.

    `method`: "bootstrap" resamples each step's runs (percentile interval of `statistic`);
    "t" is the Student-t interval of the mean (statistic must be "mean"), mean +- t(n-1) s/sqrt(n).
    `clip` keeps the band within the runs' min and max at each step.
    """
    runs = np.asarray(values, dtype=np.float64)
    if runs.ndim != 2:
        raise ValueError(f"values must be a (runs x steps) array, got shape {runs.shape}")
    if statistic not in ("mean", "iqm", "median"):
        raise ValueError(f"statistic must be 'mean', 'iqm' or 'median', got {statistic!r}")
    if method not in ("bootstrap", "t"):
        raise ValueError(f"method must be 'bootstrap' or 't', got {method!r}")
    if method == "t" and statistic != "mean":
        raise ValueError(f"the t interval is for the mean, not the {statistic}")
    check_settings(reps, confidence, "percentile")
    runs = np.where(np.isfinite(runs), runs, np.nan)
    k = np.sum(~np.isnan(runs), axis=0)
    center, lower, upper = (np.full(runs.shape[1], np.nan) for _ in range(3))
    packed = np.sort(runs, axis=0)  # NaN sorts last: step s's k[s] values are its first rows
    rng = generator(seed)
    # Steps with the same number of runs go together, as a dense (n, steps) block.
    for n in np.unique(k[k > 0]):
        cols = np.flatnonzero(k == n)
        block = packed[:n, cols]
        center[cols] = _statistic(block, statistic, axis=0)
        if n == 1:
            lower[cols] = upper[cols] = center[cols]
        elif method == "t":
            half = t_critical(int(n) - 1, confidence) * block.std(axis=0, ddof=1) / np.sqrt(n)
            lower[cols], upper[cols] = center[cols] - half, center[cols] + half
        else:
            # Columns are steps, each a sample of its n runs: scipy draws the same run indices
            # at every step of the block, which leaves each step's own bootstrap as it is.
            lower[cols], upper[cols] = bootstrap_bounds(
                [block.T],
                lambda drawn: _statistic(drawn[0], statistic, axis=-1),
                reps=reps,
                confidence=confidence,
                method="percentile",
                seed=rng,
                per_rep=block.size,
            )
    has = k > 0
    if clip and has.any():
        lower[has] = np.maximum(lower[has], np.nanmin(runs[:, has], axis=0))
        upper[has] = np.minimum(upper[has], np.nanmax(runs[:, has], axis=0))
    return Band(center, lower, upper, k)
