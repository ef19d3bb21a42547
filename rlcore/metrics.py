"""Where a trainer's metrics go. The trainer reports; it does not know who listens."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol


class MetricsSink(Protocol):
    """Receives one point per update: env step count and named scalar metrics."""

    def log(self, step: int, metrics: dict[str, float]) -> None: ...


class JsonlSink:
    """Appends one JSON line per point, e.g. `metrics.jsonl` in a run folder."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def log(self, step: int, metrics: dict[str, float]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\n")


class FanOut:
    """Sends every point to several sinks."""

    def __init__(self, *sinks: MetricsSink) -> None:
        self.sinks = sinks

    def log(self, step: int, metrics: dict[str, float]) -> None:
        for sink in self.sinks:
            sink.log(step, metrics)
