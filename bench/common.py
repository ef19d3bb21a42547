"""Helpers the benchmarks share: the markdown table they print, the JSON they write, a sink.

The host line is `matmul_floor.host` / `host_line`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
