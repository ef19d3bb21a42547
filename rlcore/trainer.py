"""`train`: run a TrainSpec to the end with its algorithm, checkpoint and export the policy."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rlcore.algos import ALGORITHMS
from rlcore.checkpoint import load_checkpoint
from rlcore.metrics import MetricsSink
from rlcore.run import CHECKPOINTS, Run
from rlcore.spec import TrainSpec


@dataclass
class TrainResult:
    """What a finished (or stopped) run reports."""

    steps: int
    mean_return: float | None  # over the last 100 episodes
    best_return: float | None
    stopped: bool
    wall_time: float


def last_checkpoint_step(out_dir: Path) -> int | None:
    """The env step of the run folder's checkpoint, or None when it has none."""
    saved = load_checkpoint(out_dir / CHECKPOINTS)
    return None if saved is None else int(saved["collector"]["global_step"])


def train(
    spec: TrainSpec,
    out_dir: Path,
    sink: MetricsSink | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train (or resume) `spec` in `out_dir`; checkpoint and export the policy at the end.

    Resumes from `out_dir/checkpoints` when a checkpoint of the same spec is there, or of
    the same spec but for `total_steps`: a larger one extends the run (`rlcore.lineage`).
    `should_stop` is polled between updates; a stopped run still checkpoints and exports.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "spec.json").write_text(json.dumps(spec.model_dump(mode="json"), indent=2))
    run = Run(spec, out_dir, sink, should_stop)
    try:
        ALGORITHMS[spec.algo](run)
        run.checkpoint()
        run.export()
    finally:
        run.close()
    return TrainResult(
        steps=run.global_step,
        mean_return=run.mean_return,
        best_return=run.best_return,
        stopped=run.global_step < spec.total_steps,
        wall_time=run.wall_time,
    )
