"""Helpers the benchmarks share: the markdown table they print, the JSON they write, sinks.

The host line is `matmul_floor.host` / `host_line`.
"""

from __future__ import annotations

import json
import tempfile
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from rlcore.spec import TrainSpec
from rlcore.trainer import TrainResult, train

RESULTS = Path(__file__).parent / "results"


def print_table(head: list[str], lines: list[list[str]]) -> None:
    """Print a markdown table, columns padded to their widest cell."""
    rows = [head, *lines]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    for i, row in enumerate(rows):
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def fmt_seconds(s: float) -> str:
    """Seconds for a table cell: one decimal under 10 s, none above."""
    return f"{s:.1f}" if s < 10 else f"{s:.0f}"


def write_json(path: Path, report: dict[str, Any]) -> None:
    """Write a bench's report (rewritten after each row, so partial results survive)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))


class ListSink:
    """A metrics sink that keeps every point in memory (about a microsecond each)."""

    def __init__(self) -> None:
        self.points: list[tuple[int, dict[str, float]]] = []

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.points.append((step, metrics))

    def flush(self) -> None:
        pass


class Last100:
    """Mean return of the last 100 episodes, and when it first reached the target."""

    def __init__(self, target: float) -> None:
        self.returns: deque[float] = deque(maxlen=100)
        self.target = target
        self.hit: tuple[int, float] | None = None

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.returns)) if self.returns else None

    def add(self, returns: list[float], step: int, seconds: float) -> None:
        self.returns.extend(returns)
        if self.hit is None and len(self.returns) == 100 and self.mean >= self.target:
            self.hit = (step, seconds)


class _Last100Sink:
    """Feeds rlcore's per-update points to a Last100.

    A point holds the mean and count of the episodes that ended in that update, so
    each episode enters the window at its update's mean: the window's mean is exact
    whenever it holds whole updates, and off by at most one update's spread otherwise.
    """

    def __init__(self, last100: Last100) -> None:
        self.last100 = last100

    def log(self, step: int, metrics: dict[str, float]) -> None:
        count = int(metrics.get("charts/episodes", 0))
        returns = [metrics["charts/episodic_return"]] * count if count else []
        self.last100.add(returns, step, metrics["perf/wall_time"])

    def flush(self) -> None:
        pass


def train_watched(spec: TrainSpec, target: float) -> tuple[TrainResult, Last100]:
    """Train `spec` through `rlcore.trainer.train`, as the service's worker does, in a
    temporary folder, with the mean of the last 100 episodes watched against `target`."""
    last100 = Last100(target)
    with tempfile.TemporaryDirectory() as out:
        result = train(spec, Path(out), sink=_Last100Sink(last100))
    return result, last100
