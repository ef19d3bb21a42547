"""Metric points per job are capped: a long job's points are thinned, no episode lost from the curve."""

from __future__ import annotations

from pathlib import Path

from rlcore.spec import TrainSpec
from rlcore.trainer import last_checkpoint_step, train
from tests.conftest import TINY_SPEC
from worker.runner import thinner_for
from worker.sink import BufferedSink, Point, Thinner

# A2C, 3,000 steps of 2 x 4: 375 updates, so 375 points without a cap.
SPEC = {
    **TINY_SPEC,
    "algo": "a2c",
    "total_steps": 3000,
    "num_envs": 2,
    "rollout_length": 4,
    "checkpoint_interval": 1000,
}
CAP = 50


def trained(spec: TrainSpec, out: Path, sink: BufferedSink, stop_at: int | None = None) -> list[Point]:
    """Train (or resume) in `out`, optionally stopping after `stop_at` steps; the points stored."""
    stop = (lambda: sink.last_step is not None and sink.last_step >= stop_at) if stop_at else None
    train(spec, out, sink=sink, should_stop=stop)
    return sink.drain()


def test_a_job_over_the_cap_stores_at_most_the_cap_and_every_episode(tmp_path: Path) -> None:
    spec = TrainSpec.model_validate(SPEC)
    full = trained(spec, tmp_path / "full", BufferedSink())
    assert len(full) == 375

    thin = trained(spec, tmp_path / "thin", BufferedSink(thinner_for(spec, CAP)))
    assert len(thin) <= CAP
    assert thin[-1][0] == full[-1][0]  # the last step is stored
    steps = [step for step, _ in thin]
    assert steps == sorted(set(steps))

    def episodes(points: list[Point]) -> float:
        return sum(v.get("charts/episodes", 0.0) for _, v in points)

    def return_sum(points: list[Point]) -> float:
        return sum(
            v["charts/episodic_return"] * v["charts/episodes"] for _, v in points if "charts/episodes" in v
        )

    # Every finished episode is counted once, and the curve's mean return is the same.
    assert episodes(thin) == episodes(full) > 0
    assert abs(return_sum(thin) - return_sum(full)) < 1e-6 * return_sum(full)
    # Each stored point's return is the mean over the updates folded into it.
    first_step = thin[0][0]
    folded = [v for step, v in full if step <= first_step and "charts/episodes" in v]
    expected = sum(v["charts/episodic_return"] * v["charts/episodes"] for v in folded) / sum(
        v["charts/episodes"] for v in folded
    )
    assert abs(thin[0][1]["charts/episodic_return"] - expected) < 1e-9


def test_a_resumed_thinned_job_stores_the_same_points(tmp_path: Path) -> None:
    spec = TrainSpec.model_validate(SPEC)
    straight = trained(spec, tmp_path / "straight", BufferedSink(thinner_for(spec, CAP)))

    # Stopped mid-way (as a worker shutdown does: checkpoint, then resume from it).
    out = tmp_path / "resumed"
    before = trained(spec, out, BufferedSink(thinner_for(spec, CAP)), stop_at=1300)
    after = trained(spec, out, BufferedSink(thinner_for(spec, CAP, last_checkpoint_step(out) or 0)))
    stored = {step: values for step, values in before + after}  # keyed by step, as the database is
    # The stop adds one point (the updates folded up to the checkpoint); the rest are the same steps.
    assert set(stored) - {step for step, _ in straight} <= {before[-1][0]}
    assert len(stored) <= CAP
    total = sum(v.get("charts/episodes", 0.0) for v in stored.values())
    assert total == sum(v.get("charts/episodes", 0.0) for _, v in straight)


def test_a_job_under_the_cap_stores_every_update() -> None:
    spec = TrainSpec.model_validate(SPEC)
    assert thinner_for(spec, 100_000).stride == 1
    assert thinner_for(spec, CAP).stride > 1


def test_updates_of_uneven_size_are_thinned_by_steps() -> None:
    # Stride 4 of 10-step updates: a point each time the step passes a multiple of 40.
    thinner = Thinner(stride=4, batch=10, total_steps=200)
    steps = [10, 25, 38, 55, 80, 81, 130, 200]
    stored = [p[0] for s in steps if (p := thinner.add(s, {"charts/episodes": 1.0})) is not None]
    assert stored == [55, 80, 130, 200]
    # Resumed at step 38 (its checkpoint), the same steps are stored after it.
    resumed = Thinner(stride=4, batch=10, total_steps=200, start_step=38)
    again = [p[0] for s in steps[3:] if (p := resumed.add(s, {"charts/episodes": 1.0})) is not None]
    assert again == [55, 80, 130, 200]
