"""`rlserve train` / `rlserve eval` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from rlcore.cli import app

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


def test_missing_files_are_reported_plainly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "no such file" in result.output
    result = runner.invoke(app, ["eval", str(tmp_path / "empty")])
    assert result.exit_code == 2 and "Traceback" not in result.output
