"""The operator's own envs: `rlserve.envs` entry points join the allow-list; broken ones are skipped.

The example package (examples/rlserve-example-envs, installed by `make install`) provides
example/Majority-v0; fake distributions on sys.path provide the rest.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from rlcore.envs import (
    ENVS,
    EnvOptions,
    EnvStateNotSupported,
    get_env_state,
    make_vec_env,
    plugins,
    set_env_state,
    supports_state,
)
from rlcore.envs.plugins import PluginReport, load_plugins
from rlcore.envs.registry import _BUILDERS, _NO_STATE_SUPPORT
from rlcore.spec import TrainSpec
from rlcore.trainer import train
from tests.rlcore.conftest import RecordingSink

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = "example/Majority-v0"
LENGTH = 5  # MajorityEnv.LENGTH: signs before the query


@pytest.fixture(scope="module", autouse=True)
def _plugins_loaded() -> None:
    # At test time, not import time: test_envs.py's parametrized ids hold built-in envs only.
    load_plugins()


@pytest.fixture
def restored_registry() -> Iterator[None]:
    """Whatever the test puts on the allow-list is gone afterwards (the example env stays)."""
    tables = (ENVS, _BUILDERS, _NO_STATE_SUPPORT, plugins._added_by, plugins._seen)
    saved = [table.copy() for table in tables]
    yield
    for table, copy in zip(tables, saved, strict=True):
        table.clear()
        table.update(copy)  # type: ignore[attr-defined]


def fake_distribution(folder: Path, entry_points: dict[str, str]) -> Path:
    """A distribution `fake-env-plugins` in `folder` whose `rlserve.envs` group holds `entry_points`."""
    dist = folder / "fake_env_plugins-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-env-plugins\nVersion: 0.1\n")
    lines = [f"{name} = {value}" for name, value in entry_points.items()]
    (dist / "entry_points.txt").write_text("[rlserve.envs]\n" + "\n".join(lines) + "\n")
    return folder


def test_the_example_env_is_on_the_allow_list() -> None:
    info = ENVS[EXAMPLE]
    assert info.family == "plugin" and info.needs_memory and not info.pixels
    assert info.observation_shape == (2,) and info.action_kind == "discrete"
    assert info.action_names == ("minus", "plus") and info.max_episode_steps == LENGTH + 1
    assert info.options == () and info.solved_return == 0.9
    assert not supports_state(EXAMPLE)
    spec = TrainSpec.model_validate({"env_id": EXAMPLE, "model": "gru"})
    assert spec.env_id == EXAMPLE and spec.encoder == "dense"
    assert EXAMPLE in TrainSpec.model_json_schema()["properties"]["env_id"]["enum"]
    with pytest.raises(ValueError, match=f"option flicker does not apply to {EXAMPLE}"):
        make_vec_env(EXAMPLE, 2, 0, EnvOptions(flicker=0.5))
    # Users still name ids only: the entry point's own value is no env id.
    with pytest.raises(ValueError, match="unknown environment"):
        TrainSpec.model_validate({"env_id": "rlserve_example_envs:MAJORITY"})


def test_loading_again_adds_nothing() -> None:
    assert load_plugins() == PluginReport(loaded=(), failed=())


def test_the_example_env_follows_the_contract_with_same_step_autoreset() -> None:
    num_envs = 3
    envs = make_vec_env(EXAMPLE, num_envs, seed=4)
    obs, _ = envs.reset(seed=4)
    assert obs.shape == (num_envs, 2) and obs.dtype == np.float32
    rng = np.random.default_rng(0)
    signs = [obs[:, 0].copy()]
    episodes = 0
    for t in range(3 * (LENGTH + 1)):
        actions = rng.integers(0, 2, num_envs)
        obs, reward, terminated, truncated, info = envs.step(actions)
        query = t % (LENGTH + 1) == LENGTH  # every env's episode has the same length
        np.testing.assert_array_equal(terminated, np.full(num_envs, query))
        # The time limit (max_episode_steps) is the query step: TimeLimit flags it too.
        np.testing.assert_array_equal(truncated, terminated)
        np.testing.assert_array_equal(info["_final_obs"], terminated)
        assert reward.dtype == np.float32
        if query:
            majority = (np.sum(signs, axis=0) > 0).astype(int)
            np.testing.assert_array_equal(reward, np.where(actions == majority, 1.0, -1.0))
            # The last observation of the ended episode is the query; obs is the next one's first sign.
            np.testing.assert_array_equal(info["final_obs"], np.tile([0.0, 1.0], (num_envs, 1)))
            assert np.all(np.abs(obs[:, 0]) == 1.0) and not obs[:, 1].any()
            signs, episodes = [obs[:, 0].copy()], episodes + 1
        else:
            assert not reward.any() and not info["final_obs"].any()
            if t % (LENGTH + 1) < LENGTH - 1:
                signs.append(obs[:, 0].copy())
            else:
                np.testing.assert_array_equal(obs, np.tile([0.0, 1.0], (num_envs, 1)))
    assert episodes == 3


def _trajectory(seed: int, steps: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Observations (steps + 1, 4, 2) and rewards (steps, 4) of 4 envs under fixed actions."""
    envs = make_vec_env(EXAMPLE, 4, seed=seed)
    observations, rewards = [envs.reset(seed=seed)[0]], []
    for t in range(steps):
        obs, reward, *_ = envs.step(np.full(4, t % 2))
        observations.append(obs)
        rewards.append(reward)
    return np.stack(observations), np.stack(rewards)


def test_the_example_env_is_seeded_by_the_factory() -> None:
    (obs, rewards), (obs_again, rewards_again), (obs_other, _) = (_trajectory(s) for s in (7, 7, 8))
    np.testing.assert_array_equal(obs, obs_again)
    np.testing.assert_array_equal(rewards, rewards_again)
    assert not np.array_equal(obs, obs_other)
    # Each env of the vector has a seed of its own.
    assert len({tuple(column) for column in obs[:, :, 0].T}) == 4


def test_a_resumed_run_on_the_example_env_starts_fresh_episodes(
    make_spec, sink: RecordingSink, tmp_path: Path
) -> None:
    envs = make_vec_env(EXAMPLE, 2, seed=0)
    with pytest.raises(EnvStateNotSupported, match=EXAMPLE):
        get_env_state(envs)
    with pytest.raises(EnvStateNotSupported):
        set_env_state(envs, {})
    spec = make_spec(algo="a2c", model="gru", env_id=EXAMPLE, num_envs=2, rollout_length=16, total_steps=128)
    stopped = train(spec, tmp_path, sink=sink, should_stop=lambda: len(sink.points) >= 2)
    assert stopped.stopped
    saved = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert saved["collector"]["envs"] is None and saved["collector"]["global_step"] == 64
    result = train(spec, tmp_path, sink=sink)
    assert result.steps == spec.total_steps
    assert [step for step, _ in sink.points] == [32, 64, 96, 128]


def test_rlserve_train_sees_the_plugins(tmp_path: Path) -> None:
    # A process of its own: nothing has loaded the plugins but the command.
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"env_id: {EXAMPLE}\nalgo: a2c\nmodel: gru\ntotal_steps: 64\nnum_envs: 2\ndevice: cpu\n")
    command = [
        sys.executable,
        "-c",
        "from rlcore.cli import app; app()",
        "train",
        str(spec),
        "--out",
        str(tmp_path / "run"),
    ]
    done = subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"on {EXAMPLE}" in done.stderr and (tmp_path / "run" / "policy.onnx").is_file()


def test_broken_entry_points_are_logged_and_skipped(
    restored_registry: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    module = "tests.rlcore.fake_plugins"
    broken = {
        "missing": (
            "tests.rlcore.no_such_module:PLUGIN",
            "ModuleNotFoundError: No module named 'tests.rlcore.no_such_module'",
        ),
        "no-attr": (f"{module}:NO_SUCH_NAME", "AttributeError"),
        "not-a-plugin": (f"{module}:NOT_A_PLUGIN", "names a dict, not an rlcore.envs.plugins.EnvPlugin"),
        "builtin-clash": (
            f"{module}:CARTPOLE_AGAIN",
            "id CartPole-v1 is a built-in env (classic); a plugin cannot replace it",
        ),
        "plugin-clash": (
            f"{module}:MAJORITY_AGAIN",
            f"id {EXAMPLE} was already added by majority = rlserve_example_envs:MAJORITY",
        ),
        "tuple-obs": (f"{module}:BLACKJACK", "observation space Tuple("),
        "no-mask": (f"{module}:NO_FINAL_OBS_MASK", 'info["_final_obs"]'),
    }
    good = {"short-cue-recall": f"{module}:SHORT_CUE_RECALL"}
    entries = {**{name: value for name, (value, _) in broken.items()}, **good}
    monkeypatch.syspath_prepend(str(fake_distribution(tmp_path, entries)))
    example_builder, cartpole = _BUILDERS[EXAMPLE], ENVS["CartPole-v1"]

    with caplog.at_level(logging.INFO, logger="rlserve.plugins"):
        report = load_plugins()  # returns: a broken plugin does not stop the service

    assert report.loaded == ("test/CueRecallShort-v0",)
    failures = {failure.entry_point.split(" = ")[0]: failure for failure in report.failed}
    assert set(failures) == set(broken)
    errors = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == len(broken)
    for name, (value, why) in broken.items():
        where = f"{name} = {value} (fake-env-plugins)"
        assert failures[name].entry_point == where and why in failures[name].error, failures[name]
        assert any(where in error and why in error for error in errors), (name, errors)
    # Nothing built in, nor the example, was replaced; the broken ones are not allowed.
    assert ENVS["CartPole-v1"] is cartpole and _BUILDERS[EXAMPLE] is example_builder
    assert make_vec_env("CartPole-v1", 2, 0).single_observation_space.shape == (4,)
    assert not {"test/Dict-v0", "test/Blackjack-v0", "test/NoFinalObsMask-v0"} & set(ENVS)
    assert load_plugins() == PluginReport(loaded=(), failed=())  # each entry point is tried once


def test_a_plugin_vector_env_with_state_resumes_exactly(
    restored_registry: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    entry = {"short-cue-recall": "tests.rlcore.fake_plugins:SHORT_CUE_RECALL"}
    monkeypatch.syspath_prepend(str(fake_distribution(tmp_path, entry)))
    assert load_plugins().loaded == ("test/CueRecallShort-v0",)
    env_id = "test/CueRecallShort-v0"
    info = ENVS[env_id]
    assert (
        info.family == "plugin"
        and info.observation_shape == (3,)
        and info.action_names == ("action 0", "action 1")
    )
    assert supports_state(env_id)
    envs = make_vec_env(env_id, 3, seed=2)
    rng = np.random.default_rng(0)
    for _ in range(5):
        envs.step(rng.integers(0, 2, 3))
    state = get_env_state(envs)
    actions = [rng.integers(0, 2, 3) for _ in range(9)]
    first = [envs.step(a)[:4] for a in actions]
    restored = make_vec_env(env_id, 3, seed=99)
    set_env_state(restored, state)
    for a, expected in zip(actions, first, strict=True):
        for got, want in zip(restored.step(a)[:4], expected, strict=True):
            np.testing.assert_array_equal(got, want)
