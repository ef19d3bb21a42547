"""Min/max bucket downsampling keeps spikes and collapses."""

from __future__ import annotations

import random

from app.downsample import minmax_downsample


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
