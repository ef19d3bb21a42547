"""Episode replays: one frame per step, the policy's own probabilities and memory, the env's hidden truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from rlcore.distributions import action_spec_of
from rlcore.envs import EnvOptions, make_vec_env
from rlcore.evaluate import run_episodes, torch_policy_actor
from rlcore.export import export_policy
from rlcore.models import ActorCritic, build_policy, policy_config
from rlcore.replay import MAX_STEPS, Replay, memory_on, record_episode, record_episodes, replay_export

HIDDEN = 16


def make_policy(env_id: str, model: str, num_layers: int = 1, seed: int = 0) -> tuple[ActorCritic, dict]:
    """A random policy of `model` for `env_id`, with logits far enough from uniform to tell apart."""
    envs = make_vec_env(env_id, 1, 0)
    shape, actions = envs.single_observation_space.shape, action_spec_of(envs.single_action_space)
    envs.close()
    torch.manual_seed(seed)
    config = policy_config(model, shape, actions, HIDDEN, num_layers, 4 if model == "window" else 1)
    policy = build_policy(config)
    with torch.no_grad():
        policy.policy_head.weight.mul_(100.0)  # orthogonal init with gain 0.01 is near uniform
    return policy, config


def exported(tmp_path: Path, env_id: str, model: str) -> tuple[Path, ActorCritic]:
    policy, config = make_policy(env_id, model)
    export_policy(policy, config, tmp_path, {"env_id": env_id, "env_options": {}})
    return tmp_path, policy


def recomputed(policy: ActorCritic, replay: Replay) -> tuple[np.ndarray, np.ndarray]:
    """Action probabilities and values, step by step from the stored observations and memory.

    A recurrent policy's state before step t is the stored state after step t - 1 (zero at 0).
    """
    probs, values = [], []
    state = policy.initial_state(1)
    no_start = torch.zeros((1, 1), dtype=torch.bool)
    with torch.no_grad():
        for t in range(replay.steps):
            if replay.hidden_kind == "state" and t > 0:
                state = torch.from_numpy(replay.hidden[t - 1]).reshape(1, *replay.state_shape)
            obs = torch.from_numpy(replay.observations[t])[None, None]
            params, value, state = policy(obs, state, no_start)
            probs.append(torch.softmax(params[0, 0].double(), -1).numpy())
            values.append(float(value[0, 0]))
    return np.stack(probs), np.array(values)


def test_cartpole_replay_has_a_frame_per_step_and_the_policys_probabilities(tmp_path: Path) -> None:
    path, policy = exported(tmp_path, "CartPoleMasked-v1", "gru")
    replay, video = replay_export(path, seed=3, max_steps=500)

    assert replay.steps > 5
    assert replay.frame_source == "render"
    assert replay.frames is not None and len(replay.frames) == replay.steps
    assert max(replay.frames.shape[1:3]) <= 320
    decoded = iio.imread(video, extension=".mp4", plugin="FFMPEG", index=None)
    assert decoded.shape[0] == replay.steps
    assert decoded.shape[1:] == replay.frames.shape[1:]

    probs, values = recomputed(policy, replay)
    assert replay.action_probs is not None
    np.testing.assert_allclose(replay.action_probs, probs, atol=1e-6)
    np.testing.assert_allclose(replay.values, values, atol=1e-5)
    assert replay.hidden.shape == (replay.steps, HIDDEN)
    assert replay.episode_return == pytest.approx(replay.steps)  # CartPole pays 1 a step
    assert replay.end in ("terminated", "truncated")


@pytest.mark.parametrize(
    ("model", "num_layers", "size", "kind"),
    [
        ("mlp", 1, HIDDEN, "features"),
        ("gru_cell", 1, HIDDEN, "features"),
        ("gru", 2, 2 * HIDDEN, "state"),
        ("lstm", 2, 4 * HIDDEN, "state"),
        ("window", 1, HIDDEN, "features"),
    ],
)
def test_memory_has_the_hidden_size_and_replays_the_probabilities(
    model: str, num_layers: int, size: int, kind: str
) -> None:
    policy, _ = make_policy("CartPoleMasked-v1", model, num_layers)
    replay = record_episode(policy, "CartPoleMasked-v1", seed=1, frames=False)
    assert replay.hidden_kind == kind
    assert replay.hidden.shape == (replay.steps, size)
    assert replay.frames is None
    if model != "window":  # its state is a buffer of inputs, not stored
        probs, _ = recomputed(policy, replay)
        np.testing.assert_allclose(replay.action_probs, probs, atol=1e-6)


def test_masked_cartpole_records_the_true_velocities() -> None:
    policy, _ = make_policy("CartPoleMasked-v1", "gru")
    replay = record_episode(policy, "CartPoleMasked-v1", seed=5, frames=False)
    names = [v.name for v in replay.hidden_variables]
    assert names == ["cart_velocity", "pole_angular_velocity"]
    # CartPole's Euler step: position_{t+1} = position_t + 0.02 * velocity_t, for the cart
    # (observation 0) and the pole (observation 1).
    for column, name in enumerate(names):
        moved = np.diff(replay.observations[:, column].astype(np.float64))
        np.testing.assert_allclose(moved, 0.02 * replay.hidden_values[name][:-1], atol=1e-6)
        assert not replay.hidden_visible[name].any()
        np.testing.assert_array_equal(replay.steps_since_visible(name), np.arange(replay.steps))


def test_cue_recall_replay_draws_the_observations_and_records_the_cue() -> None:
    policy, _ = make_policy("CueRecall-v0", "gru")
    replay = record_episode(policy, "CueRecall-v0", seed=2)
    assert replay.steps == 10 and replay.end == "terminated"
    assert replay.frame_source == "observation"
    assert replay.frames is not None and replay.frames.shape[0] == 10 and replay.frames.shape[-1] == 3
    cue = replay.hidden_values["cue"]
    assert (cue == np.argmax(replay.observations[0, :2])).all()
    np.testing.assert_array_equal(replay.hidden_visible["cue"], np.arange(10) == 0)
    np.testing.assert_array_equal(replay.steps_since_visible("cue"), np.arange(10))
    # The frame changes where the observation does: the cue step and the query step.
    changes = [not np.array_equal(a, b) for a, b in zip(replay.frames[:-1], replay.frames[1:], strict=True)]
    assert changes == [True] + [False] * 7 + [True]


def test_replay_json_is_plain_and_complete(tmp_path: Path) -> None:
    path, _ = exported(tmp_path, "CartPoleMasked-v1", "lstm")
    replay, _ = replay_export(path, seed=0, max_steps=50)
    document = json.loads(json.dumps(replay.to_json(), allow_nan=False))
    steps = document["steps"]
    assert steps == replay.steps
    for key in ("observations", "actions", "action_probs", "values", "rewards"):
        assert len(document[key]) == steps, key
    assert document["action"] == {"kind": "discrete", "n": 2, "names": ["left", "right"]}
    assert document["action_mean"] is None
    assert document["hidden"]["kind"] == "state"
    assert document["hidden"]["size"] == 2 * HIDDEN
    assert document["hidden"]["state_shape"] == [2, HIDDEN]
    assert np.array(document["hidden"]["values"]).shape == (steps, 2 * HIDDEN)
    velocity = document["hidden_variables"][0]
    assert velocity["name"] == "cart_velocity" and velocity["kind"] == "continuous"
    for key in ("values", "visible", "steps_since_visible"):
        assert len(velocity[key]) == steps, key


def test_gaussian_policies_record_mean_and_std() -> None:
    policy, _ = make_policy("PendulumMasked-v1", "gru")
    replay = record_episode(policy, "PendulumMasked-v1", seed=0, max_steps=30, frames=False)
    assert replay.steps == 30 and replay.end == "max_steps"
    assert replay.action_probs is None
    assert replay.action_mean is not None and replay.action_mean.shape == (30, 1)
    np.testing.assert_allclose(replay.action_std, 1.0)  # the learned log-std starts at 0
    assert replay.actions.shape == (30, 1) and np.abs(replay.actions).max() <= 2.0
    document = replay.to_json()
    assert document["action_probs"] is None and len(document["action_std"]) == 30
    assert [v["name"] for v in document["hidden_variables"]] == ["angular_velocity"]


def test_max_steps_cuts_the_episode_and_its_frames() -> None:
    policy, _ = make_policy("CartPole-v1", "mlp")
    replay = record_episode(policy, "CartPole-v1", seed=0, max_steps=4)
    assert (replay.steps, replay.end, len(replay.frames)) == (4, "max_steps", 4)
    assert replay.hidden_variables == ()
    for bad in (0, MAX_STEPS + 1):
        with pytest.raises(ValueError, match="max_steps"):
            record_episode(policy, "CartPole-v1", max_steps=bad)


def test_replays_repeat_and_deterministic_ones_take_the_likeliest_action() -> None:
    policy, _ = make_policy("CartPoleMasked-v1", "gru")

    def play(**kwargs: Any) -> Replay:
        return record_episode(policy, "CartPoleMasked-v1", frames=False, **kwargs)

    first, again = play(seed=4), play(seed=4)
    np.testing.assert_array_equal(first.actions, again.actions)
    np.testing.assert_array_equal(first.hidden, again.hidden)
    greedy = play(seed=4, deterministic=True)
    np.testing.assert_array_equal(greedy.actions, greedy.action_probs.argmax(-1))


def test_recorded_episodes_are_the_evaluated_ones() -> None:
    """record_episodes plays exactly what run_episodes plays with the same seed."""
    policy, _ = make_policy("CartPoleFlicker-v1", "gru")
    replays = record_episodes(policy, "CartPoleFlicker-v1", 20, seed=7)
    act = torch_policy_actor(policy, torch.device("cpu"), torch.Generator().manual_seed(7))
    returns = run_episodes(act, "CartPoleFlicker-v1", 20, seed=7)
    assert [r.episode_return for r in replays] == returns
    for replay in replays:
        shown = np.abs(replay.observations).sum(axis=1) > 0  # a blanked observation is all zeros
        np.testing.assert_array_equal(replay.hidden_visible["cart_velocity"], shown)
        velocity = replay.hidden_values["cart_velocity"]
        np.testing.assert_allclose(velocity[shown], replay.observations[shown, 1])


def test_pixel_observations_are_drawn_and_left_out_of_the_json() -> None:
    policy, _ = make_policy("CueRecallPixels-v0", "gru")
    replay = record_episode(policy, "CueRecallPixels-v0", seed=0, options=EnvOptions(flicker=0.5))
    assert replay.frame_source == "observation" and len(replay.frames) == replay.steps
    assert replay.frames.shape[1:] == (144, 144, 3)
    assert replay.to_json()["observations"] is None


@pytest.mark.parametrize("model", ["mlp", "gru", "lstm"])
def test_memory_on_recorded_observations_is_the_recorded_memory(model: str) -> None:
    """Fed the observations of its own episodes, a policy's memory is what it recorded."""
    policy, _ = make_policy("CartPoleMasked-v1", model)
    replays = record_episodes(policy, "CartPoleMasked-v1", 5, seed=3)
    assert len({r.steps for r in replays}) > 1  # episodes of several lengths run side by side
    for replay, memory in zip(replays, memory_on(policy, replays), strict=True):
        np.testing.assert_allclose(memory, replay.hidden, atol=1e-6)
