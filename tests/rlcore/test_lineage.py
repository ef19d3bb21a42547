"""Extending a run past its end and forking a new run from a checkpoint (rlcore.lineage)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from rlcore.lineage import FORKABLE, KEPT, LineageError, fork_checkpoint
from rlcore.run import SpecMismatchError
from rlcore.spec import TrainSpec
from rlcore.trainer import last_checkpoint_step, train
from tests.rlcore.conftest import RecordingSink, assert_same_points

# PPO on flickering CartPole (its flicker has an RNG of its own), 128 env steps per update,
# a constant learning rate: a run continued from its checkpoint must equal one run straight.
BASE: dict[str, Any] = {
    "algo": "ppo",
    "model": "gru",
    "env_id": "CartPoleFlicker-v1",
    "num_envs": 4,
    "rollout_length": 32,
    "epochs": 2,
    "anneal_lr": False,
    "eval_interval": 256,
    "eval_episodes": 2,
    "eval_deterministic": False,
}


def steps(sink: RecordingSink) -> list[int]:
    return [step for step, _ in sink.points]


def assert_same_weights(a: Path, b: Path) -> None:
    left, right = load_file(a / "policy.safetensors"), load_file(b / "policy.safetensors")
    assert left.keys() == right.keys()
    for name, tensor in left.items():
        torch.testing.assert_close(right[name], tensor, atol=1e-6, rtol=0)


@pytest.fixture(scope="module")
def straight(make_spec, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RecordingSink]:
    """BASE trained to 1024 steps in one go: what an extension or a plain fork must repeat."""
    out, sink = tmp_path_factory.mktemp("straight"), RecordingSink()
    train(make_spec(**BASE, total_steps=1024), out, sink=sink)
    return out, sink


@pytest.fixture(scope="module")
def parent(make_spec, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """BASE trained to its end at 512 steps."""
    out = tmp_path_factory.mktemp("parent")
    train(make_spec(**BASE, total_steps=512), out)
    return out


def test_a_larger_total_steps_extends_a_finished_run_as_if_asked_for_at_the_start(
    make_spec, straight, tmp_path: Path
) -> None:
    sink = RecordingSink()
    first = train(make_spec(**BASE, total_steps=512), tmp_path, sink=sink)
    assert not first.stopped and first.steps == 512
    extended = train(make_spec(**BASE, total_steps=1024), tmp_path, sink=sink)
    assert not extended.stopped and extended.steps == 1024
    assert steps(sink) == list(range(128, 1025, 128))  # every step once, the last the new total
    assert_same_points(sink, straight[1])  # evaluations included: 512 is on their cadence
    assert_same_weights(tmp_path, straight[0])


def test_an_extended_run_anneals_towards_its_new_total(make_spec, sink, tmp_path: Path) -> None:
    base = {"algo": "a2c", "model": "mlp", "num_envs": 4, "rollout_length": 16, "eval_episodes": 0}
    spec = make_spec(**base, anneal_lr=True, learning_rate=0.01, total_steps=4 * 64)
    train(spec, tmp_path, sink=sink)
    train(spec.model_copy(update={"total_steps": 8 * 64}), tmp_path, sink=sink)
    # Each update's rate is set from the step it starts at: 0.01 * (1 - step / total).
    expected = [0.01 * (1 - s / 256) for s in (0, 64, 128, 192)]
    expected += [0.01 * (1 - s / 512) for s in (256, 320, 384, 448)]
    assert sink.values("charts/learning_rate") == pytest.approx(expected)


def test_a_run_folder_still_refuses_any_other_change(make_spec, parent: Path, tmp_path: Path) -> None:
    shutil.copytree(parent / "checkpoints", tmp_path / "checkpoints")
    with pytest.raises(SpecMismatchError):
        train(make_spec(**{**BASE, "learning_rate": 1e-4}, total_steps=1024), tmp_path)


def test_a_fork_with_only_more_steps_continues_exactly_like_its_parent(
    make_spec, straight, parent: Path, tmp_path: Path
) -> None:
    # Weights, optimizer moments, envs mid-episode, RNG streams: all from the checkpoint.
    spec = make_spec(**BASE, total_steps=1024)
    assert fork_checkpoint(parent, tmp_path, spec) == 512
    sink = RecordingSink()
    train(spec, tmp_path, sink=sink)
    assert steps(sink) == list(range(640, 1025, 128))  # the fork's curve starts at the parent's step
    tail = RecordingSink()
    tail.points = [(s, m) for s, m in straight[1].points if s > 512]
    assert_same_points(sink, tail)
    assert_same_weights(tmp_path, straight[0])
    assert last_checkpoint_step(parent) == 512  # the parent's folder is left as it was


def test_a_fork_trains_with_its_changed_fields(make_spec, parent: Path, tmp_path: Path) -> None:
    spec = make_spec(**{**BASE, "learning_rate": 1e-4, "ent_coef": 0.05}, total_steps=768)
    assert fork_checkpoint(parent, tmp_path, spec) == 512
    sink = RecordingSink()
    result = train(spec, tmp_path, sink=sink)
    assert steps(sink) == [640, 768] and result.steps == 768
    assert sink.values("charts/learning_rate") == pytest.approx([1e-4, 1e-4])
    # Its mean and best returns are judged on its own episodes, none of the parent's.
    episodes = sum(sink.values("charts/episodes"))
    saved = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert len(saved["recent_returns"]) == min(episodes, 100)
    assert TrainSpec.from_saved(saved["spec"]) == spec


@pytest.mark.parametrize(
    "change",
    [
        {"model": "lstm"},
        {"hidden_size": 32},
        {"env_id": "CartPole-v1"},
        {"num_envs": 2},
        {"seed": 1},
        {"algo": "a2c"},
    ],
    ids=lambda change: next(iter(change)),
)
def test_a_fork_keeps_the_architecture_and_the_environments(
    change: dict[str, Any], make_spec, parent: Path, tmp_path: Path
) -> None:
    data = {**BASE, **change, "total_steps": 1024}
    if change.get("algo") == "a2c":
        data.pop("epochs")
    (name,) = change
    with pytest.raises(LineageError) as refused:
        fork_checkpoint(parent, tmp_path, make_spec(**data))
    assert refused.value.field == name
    assert KEPT[name] in str(refused.value)
    assert last_checkpoint_step(tmp_path) is None  # nothing was written


def test_a_fork_must_reach_past_the_checkpoint(make_spec, parent: Path, tmp_path: Path) -> None:
    with pytest.raises(LineageError) as refused:
        fork_checkpoint(parent, tmp_path, make_spec(**BASE, total_steps=512))
    assert refused.value.field == "total_steps"
    assert fork_checkpoint(tmp_path / "empty", tmp_path / "child", make_spec(**BASE)) is None


def test_every_spec_field_is_either_forkable_or_kept() -> None:
    # A new TrainSpec field must be classified: may a fork change it or not?
    assert FORKABLE.isdisjoint(KEPT)
    assert set(TrainSpec.model_fields) == FORKABLE | set(KEPT)
