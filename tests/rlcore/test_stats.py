"""Known answers for rlcore.stats: hand-computed cases, and scipy's for the bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from rlcore import stats

# -- per-run scores -------------------------------------------------------------------------------


def test_final_score_is_the_episode_mean_over_the_last_tenth_of_steps() -> None:
    steps = np.arange(1, 21) * 100  # 100..2000: the window is step > 1800, i.e. 1900 and 2000
    returns = np.arange(20, dtype=float)
    assert stats.final_score(steps, returns) == pytest.approx((18 + 19) / 2)
    # Weighted by the episodes each point reports: (18*1 + 19*3) / 4.
    episodes = np.ones(20)
    episodes[-1] = 3
    assert stats.final_score(steps, returns, episodes) == pytest.approx((18 + 57) / 4)
    # A quarter of training: step > 1500, points 1600..2000.
    assert stats.final_score(steps, returns, fraction=0.25) == pytest.approx(np.mean([15, 16, 17, 18, 19]))


def test_final_score_with_too_few_points_widens_to_the_last_points() -> None:
    # Points at 500 and 1000: the last 10% (step > 900) holds only the last one.
    assert stats.final_score([500, 1000], [10.0, 30.0]) == 30.0
    assert stats.final_score([500, 1000], [10.0, 30.0], min_points=2) == 20.0
    assert stats.final_score([500, 1000], [10.0, 30.0], min_points=5) == 20.0
    # A run stopped at 1000 of 10_000 steps has nothing past 9000: its last point stands in.
    assert stats.final_score([500, 1000], [10.0, 30.0], total_steps=10_000) == 30.0
    assert stats.final_score([], []) is None
    assert stats.final_score([1, 2], [math.nan, math.nan]) is None


def test_final_score_sorts_and_drops_points_without_a_return() -> None:
    assert stats.final_score([1000, 100, 900], [7.0, 1.0, math.nan]) == 7.0
    with pytest.raises(ValueError, match="fraction"):
        stats.final_score([1], [1.0], fraction=0)
    with pytest.raises(ValueError, match="one length"):
        stats.final_score([1, 2], [1.0])


def test_mmer_is_the_best_point_mean() -> None:
    steps = [100, 200, 300, 400]
    returns = [1.0, 9.0, 4.0, 5.0]
    assert stats.mmer(steps, returns) == 9.0
    # Pooled to at least 2 episodes per group: (1*1 + 9*1)/2 = 5 and (4*2 + 5*2)/4 = 4.5.
    assert stats.mmer(steps, returns, [1, 1, 2, 2], min_episodes=2) == 5.0
    # Groups of 3: [1, 9, 4] (1+9+8)/4 = 4.5, then 5 (2 episodes) falls short and is dropped.
    assert stats.mmer(steps, returns, [1, 1, 2, 2], min_episodes=3) == 4.5
    # Fewer episodes than asked in all: one group of everything, (1+9+8+10)/6.
    assert stats.mmer(steps, returns, [1, 1, 2, 2], min_episodes=100) == pytest.approx(28 / 6)
    assert stats.mmer([], []) is None


def test_eval_score_is_the_last_evaluation() -> None:
    assert stats.eval_score([3000, 1000, 2000], [5.0, 1.0, 3.0]) == 5.0
    assert stats.eval_score([], []) is None


def test_normalise_by_given_bounds_and_by_the_runs() -> None:
    (only,) = stats.normalise([0.0, 250.0, 500.0], 0.0, 500.0)
    np.testing.assert_allclose(only, [0, 0.5, 1])
    tasks = [[10.0, 20.0], [-1.0, 0.0, 1.0]]
    bounds = stats.run_bounds(tasks)
    assert bounds == [(10.0, 20.0), (-1.0, 1.0)]
    a, b = stats.normalise(tasks, [lo for lo, _ in bounds], [hi for _, hi in bounds])
    np.testing.assert_allclose(a, [0, 1])
    np.testing.assert_allclose(b, [0, 0.5, 1])
    with pytest.raises(ValueError, match="above low"):
        stats.normalise([1.0], 5.0, 5.0)
    with pytest.raises(ValueError, match="one per task"):
        stats.normalise(tasks, [0.0, 0.0, 0.0], 1.0)


# -- aggregates -----------------------------------------------------------------------------------


def test_iqm_trims_a_quarter_off_each_end_as_scipy_does() -> None:
    assert stats.aggregate_iqm(np.arange(1, 9)) == 4.5  # mean of 3..6
    assert stats.aggregate_iqm(np.arange(1, 11)) == 5.5  # int(2.5) = 2 cut each side: mean of 3..8
    assert stats.aggregate_iqm([1, 2, 3, 4, 100]) == 3.0  # int(1.25) = 1: mean of 2, 3, 4
    assert stats.aggregate_iqm([1, 30, 2]) == 11.0  # int(0.75) = 0: the plain mean
    assert stats.aggregate_iqm([1, 2, 3, 4, 5, 60, 100]) == pytest.approx(14.8)  # int(1.75) = 1
    assert stats.aggregate_iqm([7]) == 7.0
    assert stats.trim_mean([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.1) == 5.5
    # Pooled over tasks: 1..4 and 5..8 together are 1..8.
    assert stats.aggregate_iqm([[1, 2, 3, 4], [5, 6, 7, 8]]) == 4.5
    with pytest.raises(ValueError, match="proportion"):
        stats.trim_mean([1, 2], 0.5)


def test_mean_median_and_optimality_gap() -> None:
    # Mean of task means (2 and 10), weighing tasks equally whatever their runs.
    assert stats.aggregate_mean([[1, 3], [10, 10, 10, 10]]) == 6.0
    assert stats.aggregate_median([[1, 3], [10, 10, 10, 10]]) == 10.0
    assert stats.aggregate_median([4, 1, 3, 2]) == 2.5
    # min(x, 1): 0.5, 1, 1, 0 -> mean 0.625 -> gap 0.375.
    assert stats.aggregate_optimality_gap([0.5, 1.2, 1.0, 0.0]) == pytest.approx(0.375)
    assert stats.aggregate({"a": [1, 2], "b": [3]}, "mean") == pytest.approx(2.25)


def test_scores_that_are_not_clear_are_refused() -> None:
    with pytest.raises(ValueError, match="ambiguous"):
        stats.aggregate_iqm(np.ones((3, 2)))
    with pytest.raises(ValueError, match="finite"):
        stats.aggregate_iqm([1.0, math.nan])
    with pytest.raises(ValueError, match="no runs"):
        stats.aggregate_iqm([[1.0], []])
    with pytest.raises(ValueError, match="statistic"):
        stats.aggregate([1.0], "mode")


# -- bootstrap intervals --------------------------------------------------------------------------

SAMPLE = [3.1, 0.4, 2.2, 5.0, 1.7, 4.4, 2.9, 0.8]


def test_bootstrap_on_one_task_keeps_its_known_answer() -> None:
    # scipy.stats.bootstrap((SAMPLE,), statistic, n_resamples=2000, method="percentile", rng=0)
    # with scipy 1.17.1 gave these bounds; so did the numpy bootstrap this replaced.
    got = stats.aggregate_intervals(SAMPLE, ("mean", "iqm"), reps=2000, seed=0)
    assert got["mean"].point == pytest.approx(2.5625)
    assert (got["mean"].low, got["mean"].high) == pytest.approx((1.5625, 3.5878125), rel=1e-12)
    assert got["iqm"].point == pytest.approx(2.475)
    assert (got["iqm"].low, got["iqm"].high) == pytest.approx((1.225, 3.9), rel=1e-12)


def test_stratified_intervals_by_hand() -> None:
    # Mean of task means with [0, 1] and a task that cannot vary: the first task's resample
    # means are 0, 1/2, 1 with chances 1/4, 1/2, 1/4, so the 95% bounds are (0 + 10) / 2 and
    # (1 + 10) / 2. A one-run task (which scipy will not resample) is held fixed the same way.
    for fixed in ([10.0, 10.0], [10.0]):
        assert stats.aggregate_interval([[0.0, 1.0], fixed], "mean", reps=2000) == (5.25, 5.0, 5.5)
    # Pooled median of {0 or 1, 0 or 1, 10}: 0 with chance 1/4, else 1.
    assert stats.aggregate_interval([[0.0, 1.0], [10.0]], "median", reps=2000) == (1.0, 0.0, 1.0)
    # P(X > Y) of x = [0, 2] against a fixed 1: a resample of x wins 0, 1/2 or 1 of its pairs.
    assert stats.probability_of_improvement_interval([0.0, 2.0], [1.0], reps=2000) == (0.5, 0.0, 1.0)


def test_stratified_interval_is_scipys_bootstrap_of_one_sample_per_task() -> None:
    a, b = np.array([3.0, 1.0, 4.0, 1.0, 5.0]), np.array([90.0, 20.0, 60.0])
    ours = stats.aggregate_interval([a, b], "mean", reps=1000, seed=5)
    theirs = scipy.stats.bootstrap(
        (a, b),
        lambda x, y, axis: (x.mean(axis=axis) + y.mean(axis=axis)) / 2,
        n_resamples=1000,
        method="percentile",
        rng=np.random.default_rng(5),
    ).confidence_interval
    assert (ours.low, ours.high) == pytest.approx((theirs.low, theirs.high), rel=1e-12)


def test_bootstrap_interval_contains_the_point_and_shrinks_with_more_runs() -> None:
    rng = np.random.default_rng(3)
    widths = []
    for n in (5, 20, 80):
        interval = stats.aggregate_interval(rng.normal(100, 20, size=n), "iqm", reps=1000, seed=1)
        assert interval.low <= interval.point <= interval.high
        widths.append(interval.high - interval.low)
    assert widths[0] > widths[1] > widths[2]


def test_bootstrap_is_reproducible_with_a_seed() -> None:
    scores = [[1.0, 5.0, 2.0, 8.0], [30.0, 10.0, 20.0]]
    first = stats.aggregate_interval(scores, "mean", reps=500, seed=7)
    assert stats.aggregate_interval(scores, "mean", reps=500, seed=7) == first
    assert stats.aggregate_interval(scores, "mean", reps=500, seed=8) != first
    gen = stats.aggregate_interval(scores, "mean", reps=500, seed=np.random.default_rng(7))
    assert gen == first


def test_degenerate_scores_give_a_zero_width_interval() -> None:
    for scores in ([0.1] * 7, [[0.1] * 7, [0.3] * 3], [42.0], [[1.0], [2.0]]):
        for name, interval in stats.aggregate_intervals(scores, reps=200).items():
            assert interval.low == interval.high, (scores, name)
            assert interval.point == pytest.approx(interval.low)


def test_stratified_bootstrap_resamples_within_each_task() -> None:
    small, large = np.array([0.0, 1.0, 2.0]), np.array([1000.0, 1001.0, 1002.0, 1003.0])
    a, b = stats.stratified_resample([small, large], 300, np.random.default_rng(0))
    assert a.shape == (300, 3) and b.shape == (300, 4)
    assert np.isin(a, small).all() and np.isin(b, large).all()
    # Each replicate keeps one small and one large task, so the mean of task means stays in
    # [(0 + 1000) / 2, (2 + 1003) / 2]; pooled resampling would swing by hundreds.
    interval = stats.aggregate_interval([small, large], "mean", reps=1000)
    assert 500 <= interval.low <= interval.point <= interval.high <= 502.5


def test_bootstrap_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="reps"):
        stats.aggregate_interval([1.0, 2.0], reps=0)
    with pytest.raises(ValueError, match="reps"):
        stats.aggregate_interval([1.0, 2.0], reps=1)  # one replicate has no spread
    with pytest.raises(ValueError, match="confidence"):
        stats.aggregate_interval([1.0, 2.0], confidence=95)
    with pytest.raises(ValueError, match="method"):
        stats.aggregate_interval([1.0, 2.0], method="bca")  # type: ignore[arg-type]


def test_basic_interval_reflects_the_percentile_one_about_the_point() -> None:
    pct = stats.aggregate_interval(SAMPLE, "mean", reps=1000, seed=2)
    basic = stats.aggregate_interval(SAMPLE, "mean", reps=1000, seed=2, method="basic")
    assert basic.low == pytest.approx(2 * pct.point - pct.high)
    assert basic.high == pytest.approx(2 * pct.point - pct.low)


# -- probability of improvement -------------------------------------------------------------------


def test_probability_of_improvement_by_hand() -> None:
    assert stats.probability_of_improvement([1, 2, 3], [0, 0, 0]) == 1.0
    assert stats.probability_of_improvement([0, 0, 0], [1, 2, 3]) == 0.0
    assert stats.probability_of_improvement([1, 1], [1, 1, 1]) == 0.5  # all ties
    # Pairs (1,2) (1,2) (1,0) (3,2) (3,2) (3,0): 4 wins of 6.
    assert stats.probability_of_improvement([1, 3], [2, 2, 0]) == pytest.approx(4 / 6)
    # 2 vs 1, 2, 3: a win, a tie, a loss.
    assert stats.probability_of_improvement([2], [1, 2, 3]) == 0.5
    # Averaged over tasks: 1 on the first, 1/2 on the second.
    assert stats.probability_of_improvement([[1, 2], [5]], [[0], [5, 5]]) == 0.75
    # Tasks are paired by name when given as mappings.
    # (a: 1 vs 5 loses, b: 0 vs 0 ties; by order it would be 1 vs 0 and 0 vs 5, 0.5.)
    assert stats.probability_of_improvement({"a": [1], "b": [0]}, {"b": [0], "a": [5]}) == 0.25


def test_probability_of_improvement_interval() -> None:
    clear = stats.probability_of_improvement_interval([5, 6, 7], [1, 2, 3], reps=500)
    assert clear == (1.0, 1.0, 1.0)
    x, y = [1.0, 4.0, 2.0, 6.0, 5.0], [3.0, 1.5, 2.5, 0.5, 4.5]
    interval = stats.probability_of_improvement_interval(x, y, reps=2000, seed=4)
    assert interval.point == pytest.approx(stats.probability_of_improvement(x, y))
    assert 0 <= interval.low < interval.point < interval.high <= 1
    assert stats.probability_of_improvement_interval(x, y, reps=2000, seed=4) == interval
    with pytest.raises(ValueError, match="tasks"):
        stats.probability_of_improvement([[1], [2]], [1, 2])


# -- performance profiles -------------------------------------------------------------------------


def test_performance_profile_fractions_by_hand() -> None:
    profile = stats.performance_profile([1, 2, 3, 4], [0, 2.5, 4], reps=200)
    np.testing.assert_allclose(profile.fractions, [1.0, 0.5, 0.0])  # strictly above tau
    # Per task, then averaged: at 3.5 the first task has none of 2 above, the second 3 of 4.
    profile = stats.performance_profile([[1, 2], [3, 4, 5, 6]], [0, 3.5, 6], reps=1000)
    np.testing.assert_allclose(profile.fractions, [1.0, 0.375, 0.0])
    assert np.all(profile.lower <= profile.fractions) and np.all(profile.fractions <= profile.upper)
    # No doubt at 0 (all runs above) or 6 (none): the band closes there.
    assert (profile.lower[0], profile.upper[0], profile.lower[2], profile.upper[2]) == (1, 1, 0, 0)
    assert profile.lower[1] < 0.375 < profile.upper[1]
    chart = profile.to_dict()
    assert list(chart) == ["taus", "fractions", "lower", "upper"] and chart["taus"] == [0, 3.5, 6]


def test_performance_profile_default_taus_span_the_scores() -> None:
    profile = stats.performance_profile([[3.0, 9.0], [5.0]], reps=100)
    assert len(profile.taus) == 51 and profile.taus[0] == 3.0 and profile.taus[-1] == 9.0
    assert np.all(np.diff(profile.fractions) <= 0)


# -- the compare band -----------------------------------------------------------------------------


def cartpole_like(seeds: int = 3, steps: int = 200) -> np.ndarray:
    """Returns in [0, 500] rising to the cap, different per seed, some seeds ending early."""
    rng = np.random.default_rng(11)
    t = np.linspace(0, 1, steps)
    runs = np.stack(
        [np.clip(500 * t ** rng.uniform(0.5, 2) + rng.normal(0, 60, steps), 0, 500) for _ in range(seeds)]
    )
    runs[0, 150:] = np.nan  # a seed that has not got this far
    runs[1, 180:] = np.nan
    return runs


@pytest.mark.parametrize(
    ("statistic", "method"),
    [("mean", "bootstrap"), ("iqm", "bootstrap"), ("median", "bootstrap"), ("mean", "t")],
)
def test_band_never_leaves_the_range_the_runs_reached(statistic: str, method: str) -> None:
    runs = cartpole_like()
    band = stats.curve_band(runs, statistic=statistic, method=method, reps=300)  # type: ignore[arg-type]
    low, high = np.nanmin(runs, axis=0), np.nanmax(runs, axis=0)
    assert np.all(band.lower >= low) and np.all(band.upper <= high)
    assert np.all(band.lower <= band.center) and np.all(band.center <= band.upper)
    assert band.n.tolist() == [3] * 150 + [2] * 30 + [1] * 20
    # Where one seed is left the band is that seed's value.
    np.testing.assert_array_equal(band.lower[180:], runs[2, 180:])
    np.testing.assert_array_equal(band.upper[180:], runs[2, 180:])


def test_band_by_hand() -> None:
    runs = np.array([[1.0, 500.0, np.nan], [2.0, 500.0, np.nan], [3.0, 200.0, 7.0]])
    t = stats.curve_band(runs, method="t", clip=False)
    half = stats.t_critical(2) * 1.0 / math.sqrt(3)  # s = 1 for 1, 2, 3
    assert (t.center[0], t.lower[0], t.upper[0]) == pytest.approx((2.0, 2.0 - half, 2.0 + half))
    assert t.upper[1] > 500  # the t interval of 500, 500, 200 promises more than CartPole gives...
    clipped = stats.curve_band(runs, method="t")
    assert clipped.upper[1] == 500.0 and clipped.lower[1] >= 200.0  # ...the clipped band does not
    # Bootstrap mean of 1, 2, 3: all-ones has chance 1/27 > 2.5%, so the band reaches 1 and 3.
    boot = stats.curve_band(runs, reps=2000)
    assert (boot.lower[0], boot.center[0], boot.upper[0]) == (1.0, 2.0, 3.0)
    assert (boot.lower[2], boot.center[2], boot.upper[2], boot.n[2]) == (7.0, 7.0, 7.0, 1)
    empty = stats.curve_band(np.full((2, 2), np.nan))
    assert empty.to_dict() == {
        "center": [None, None],
        "lower": [None, None],
        "upper": [None, None],
        "n": [0, 0],
    }


def test_band_statistic_at_each_step_is_that_of_the_runs_there() -> None:
    rng = np.random.default_rng(5)
    runs = rng.exponential(100, size=(9, 12))
    for step in range(12):
        runs[: step % 9, step] = np.nan  # 9 runs at step 0, down to 1, then 9 again
    for statistic, aggregate in [("iqm", stats.aggregate_iqm), ("median", stats.aggregate_median)]:
        band = stats.curve_band(runs, statistic=statistic, reps=100)  # type: ignore[arg-type]
        for step in range(12):
            column = runs[:, step]
            assert band.center[step] == pytest.approx(aggregate(column[np.isfinite(column)]))


def test_band_is_reproducible_and_checks_its_input() -> None:
    runs = cartpole_like(5)
    first = stats.curve_band(runs, statistic="iqm", reps=200, seed=3)
    again = stats.curve_band(runs, statistic="iqm", reps=200, seed=3)
    np.testing.assert_array_equal(first.lower, again.lower)
    with pytest.raises(ValueError, match="runs x steps"):
        stats.curve_band([1.0, 2.0])
    with pytest.raises(ValueError, match="t interval"):
        stats.curve_band(runs, statistic="iqm", method="t")


def test_t_critical_values() -> None:
    # Two-sided 95% values from the t table (and frontend/src/stats.ts): scipy's t.ppf.
    for df, value in [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (30, 2.042)]:
        assert stats.t_critical(df) == pytest.approx(value, abs=5e-4)
    assert stats.t_critical(2, 0.99) == pytest.approx(9.925, abs=5e-4)
    assert stats.t_critical(100_000) == pytest.approx(1.95996, abs=1e-4)
    with pytest.raises(ValueError, match="df"):
        stats.t_critical(0)
