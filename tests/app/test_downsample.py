"""Min/max bucket downsampling keeps spikes and collapses."""

from __future__ import annotations

import random

import numpy as np

from app.downsample import minmax_downsample, minmax_indices
from app.metrics_series import decode_rows, series_json


def test_short_series_unchanged() -> None:
    assert minmax_downsample([1, 2, 3], [1.0, 2.0, 3.0], 10) == ([1, 2, 3], [1.0, 2.0, 3.0])
    assert minmax_downsample([1, 2, 3], [1.0, 2.0, 3.0], 0) == ([1, 2, 3], [1.0, 2.0, 3.0])


def test_spike_and_collapse_survive_and_size_is_bounded() -> None:
    rng = random.Random(0)
    steps = list(range(0, 100_000, 10))
    values = [100 + rng.random() for _ in steps]
    values[1234] = 10_000.0  # one spike
    values[7777] = -50.0  # one collapse
    kept_steps, kept_values = minmax_downsample(steps, values, 200)
    assert len(kept_steps) <= 200
    assert 10_000.0 in kept_values and -50.0 in kept_values
    assert kept_steps == sorted(kept_steps)
    assert kept_steps[0] == steps[0] and kept_steps[-1] == steps[-1]
    for s, v in zip(kept_steps, kept_values, strict=True):
        assert values[steps.index(s)] == v


def test_numpy_indices_match_the_reference() -> None:
    rng = random.Random(1)
    for trial in range(1500):
        n = rng.randint(0, 200)
        max_points = rng.choice([0, 1, 2, 3, 4, 5, 7, 10, 50, n - 1, n, n + 1])
        # Odd trials: few distinct values, so ties inside buckets are common.
        values = [float(rng.randint(0, 4)) if trial % 2 else rng.random() for _ in range(n)]
        steps = [3 * i + 1 for i in range(n)]
        idx = minmax_indices(np.asarray(values, dtype=np.float64), max_points).tolist()
        assert ([steps[i] for i in idx], [values[i] for i in idx]) == minmax_downsample(
            steps, values, max_points
        )


def test_decode_rows_splits_keys_and_serialises_like_before() -> None:
    table = decode_rows([10, 20, 30], ['{"a": 1.5, "b": 2}', '{"a": -1.0}', '{"a": 0.25, "b": 3.5}'])
    assert table.keys_after(None) == ["a", "b"] and table.keys_after(20) == ["a", "b"]
    assert series_json(table, "b", 0) == ('{"steps":[10,30],"values":[2.0,3.5]}', False)
    assert series_json(table, "missing", 0) == ('{"steps":[],"values":[]}', False)
    later = table.after(10)
    assert later.row_steps.tolist() == [20, 30] and later.series["b"][0].tolist() == [30]
    assert table.after(30).keys_after(None) == []
    only_a = decode_rows([10], ['{"a": 1, "b": 2}'], ["a"])
    assert list(only_a.series) == ["a"] and only_a.series["a"][1].tolist() == [1.0]
