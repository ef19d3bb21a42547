"""The progress bar of `rlserve train` and `rlserve submit --wait`, whole at 80 columns.

Its return is the mean of the last update's episodes, and says so: the closing lines
give the mean of the last 100 episodes, a different number. The text columns are kept
short (millions of steps as `12.5M`), and the bar takes the width they leave.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.table import Column
from rich.text import Text

NO_RETURN = "    n/a"


def format_return(value: float | None) -> str:
    """A return for the bar's `last update return` field."""
    return NO_RETURN if value is None else f"{value:7.1f}"


def _count(steps: float) -> str:
    return f"{steps:,.0f}" if steps < 1_000_000 else f"{steps / 1_000_000:.1f}M"


class StepsColumn(ProgressColumn):
    """`40,000/150,000 steps`."""

    def __init__(self) -> None:
        super().__init__(table_column=Column(no_wrap=True))

    def render(self, task: Task) -> Text:
        return Text(f"{_count(task.completed)}/{_count(task.total or 0)} steps", style="progress.download")


def training_progress(
    console: Console | None = None,
    *,
    status: bool = False,
    speed: bool = True,
    get_time: Callable[[], float] | None = None,
) -> Progress:
    """A Progress whose tasks carry the fields `ret` (see format_return) and, with `speed`, `sps`.

    `status` shows the task's description (a job's status) before the bar.
    """

    def text(template: str) -> TextColumn:
        return TextColumn(template, table_column=Column(no_wrap=True))

    columns: list[ProgressColumn] = [
        *([text("{task.description}")] if status else []),
        BarColumn(bar_width=None),
        StepsColumn(),
        *([text("{task.fields[sps]}/s")] if speed else []),
        text("last update return {task.fields[ret]}"),
        text("ETA"),
        TimeRemainingColumn(table_column=Column(no_wrap=True)),
    ]
    return Progress(*columns, console=console, expand=True, get_time=get_time)
