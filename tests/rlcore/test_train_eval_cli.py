"""`rlserve train` / `rlserve eval` as a user runs them."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from rlcore.cli import app
from rlcore.progress import format_return, training_progress

runner = CliRunner()


def write_spec(path: Path, **fields) -> Path:
    spec = {"algo": "a2c", "model": "gru", "env_id": "CartPole-v1", "total_steps": 2048, "device": "cpu"}
    path.write_text(json.dumps({**spec, **fields}))
    return path


def test_train_writes_the_run_folder_and_eval_reads_it(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", str(write_spec(tmp_path / "s.json")), "--out", str(out)])
    assert result.exit_code == 0, result.output
    for name in ["spec.json", "metrics.jsonl", "policy.safetensors", "policy.json", "policy.onnx"]:
        assert (out / name).is_file(), name
    assert (out / "checkpoints" / "last.pt").is_file()
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == 2048

    result = runner.invoke(app, ["eval", str(out), "--episodes", "5"])
    assert result.exit_code == 0, result.output
    assert "CartPole-v1: mean return" in result.output and "over 5 episodes" in result.output


def test_rerunning_a_finished_run_does_not_duplicate_metrics(tmp_path: Path) -> None:
    spec, out = write_spec(tmp_path / "s.json", total_steps=512), tmp_path / "run"
    for _ in range(2):
        assert runner.invoke(app, ["train", str(spec), "--out", str(out)]).exit_code == 0
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(steps) == len(set(steps))


def test_bad_spec_gives_a_message_naming_the_field(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "s.json", learning_rate=-1, env_id="os:system")
    result = runner.invoke(app, ["train", str(spec), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "learning_rate" in result.output and "env_id" in result.output
    assert "Traceback" not in result.output


def test_a_spec_too_large_for_memory_is_refused_with_the_reason(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path / "s.json", model="lstm", hidden_size=2048, num_layers=8, num_envs=512, rollout_length=1953
    )
    result = runner.invoke(app, ["train", str(spec), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    text = " ".join(result.output.split())  # the console wraps long lines
    assert "this spec needs about" in text and "(limit 4 GiB)" in text
    assert "hidden_size 2048 x num_layers 8" in text and "512 num_envs" in text
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()


def test_missing_files_are_reported_plainly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "no such file" in result.output
    result = runner.invoke(app, ["eval", str(tmp_path / "empty")])
    assert result.exit_code == 2 and "Traceback" not in result.output


def assert_whole_bar(line: str, columns: int) -> None:
    assert len(line) <= columns, line
    assert "…" not in line, line
    assert re.search(r"ETA (\d+:\d\d:\d\d|-:--:--)$", line.rstrip()), line


@pytest.mark.parametrize("columns", [80, 100])
def test_train_bar_is_whole_and_says_which_return_it_shows(columns: int, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "s.json", total_steps=512)
    command = ["train", str(spec), "--out", str(tmp_path / "run")]
    result = runner.invoke(app, command, env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    (bar,) = [line for line in result.output.splitlines() if "512/512 steps" in line]
    assert_whole_bar(bar, columns)
    assert re.search(r"last update return +\d+\.\d", bar), bar
    assert re.search(r"mean return \(last 100 episodes\) \d+\.\d", result.output), result.output


@pytest.mark.parametrize("columns", [80, 100])
@pytest.mark.parametrize(
    ("total", "done", "ret", "sps"),
    [
        (150_000, 40_000, 485.6, 1_234),
        (999_999, 500_000, -1234.5, 123_456),
        (100_000_000, 12_345_678, -1234.5, 99_999),
    ],
)
@pytest.mark.parametrize("layout", ["train", "submit"])
def test_bar_fits_big_numbers(layout: str, total: int, done: int, ret: float, sps: int, columns: int) -> None:
    clock = [0.0]
    console = Console(width=columns, record=True, file=io.StringIO())
    if layout == "train":
        progress = training_progress(console, get_time=lambda: clock[0])
        task = progress.add_task("train", total=total, ret=format_return(ret), sps=f"{sps:,}")
    else:  # rlserve submit --wait: the job's status first, no speed
        progress = training_progress(console, status=True, speed=False, get_time=lambda: clock[0])
        task = progress.add_task("cancelled", total=total, ret=format_return(ret))
    progress.update(task, completed=done - 10)
    clock[0] = 10.0  # one step per second: hours left
    progress.update(task, completed=done)
    console.print(progress.make_tasks_table(progress.tasks))
    (line,) = console.export_text().splitlines()
    assert_whole_bar(line, columns)
    assert re.search(r"ETA \d+:\d\d:\d\d$", line.rstrip()), line
