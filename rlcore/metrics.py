"""Where a trainer's metrics go. The trainer reports; it does not know who listens."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol


class MetricsSink(Protocol):
    """Receives one point per update: env step count and named scalar metrics."""

    def log(self, step: int, metrics: dict[str, float]) -> None: ...

    def flush(self) -> None:
        """Make every point logged so far durable.

        Called before each checkpoint: a run resumed from that checkpoint does not
        report those points again, so a sink that buffers must not lose them.
        """
        ...


class JsonlSink:
    """Appends one JSON line per point, e.g. `metrics.jsonl` in a run folder."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def log(self, step: int, metrics: dict[str, float]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\n")

    def flush(self) -> None:
        """Nothing to do: every point is written when logged."""

    def drop_after(self, step: int) -> None:
        """Forget points past `step`: a resumed run writes them again from its checkpoint."""
        if not self.path.exists():
            return
        lines = self.path.read_text().splitlines(keepends=True)
        self.path.write_text("".join(line for line in lines if json.loads(line)["step"] <= step))


class FanOut:
    """Sends every point to several sinks."""

    def __init__(self, *sinks: MetricsSink) -> None:
        self.sinks = sinks

    def log(self, step: int, metrics: dict[str, float]) -> None:
        for sink in self.sinks:
            sink.log(step, metrics)

    def flush(self) -> None:
        for sink in self.sinks:
            sink.flush()
