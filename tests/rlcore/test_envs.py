"""The environment allow-list, the vector-env contract and exact state save/restore.

Atari and POPGym ids have their own files (test_atari_envs.py, test_popgym_envs.py): Atari
episodes are too long for the generic tests here, and POPGym has its own action spaces.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlcore.envs import (
    CUE_RECALL_DELAY,
    CUE_RECALL_PIXELS_DELAY,
    ENVS,
    EnvOptions,
    EnvStateNotSupported,
    check_options,
    get_env_state,
    make_vec_env,
    observation_shape,
    set_env_state,
    supports_state,
)
from rlcore.envs.registry import _BUILDERS

ALL_IDS = sorted(env_id for env_id, info in ENVS.items() if info.family not in ("atari", "popgym"))
STATEFUL_IDS = [env_id for env_id in ALL_IDS if supports_state(env_id)]
CARTPOLE_IDS = ["CartPole-v0", "CartPole-v1"]
SYNC_IDS = ["Acrobot-v1", "MountainCar-v0", "LunarLander-v3", "Pendulum-v1", "MountainCarContinuous-v0"]
BOX_IDS = ["Pendulum-v1", "PendulumMasked-v1", "MountainCarContinuous-v0", "LunarLanderContinuous-v3"]


def _cartpole_start(obs: np.ndarray) -> bool:
    return bool(np.all(np.abs(obs) <= 0.05))


def _acrobot_start(obs: np.ndarray) -> bool:
    cos1, sin1, cos2, sin2, vel1, vel2 = obs
    return bool(
        min(cos1, cos2) >= math.cos(0.1) - 1e-6
        and max(abs(sin1), abs(sin2), abs(vel1), abs(vel2)) <= 0.1 + 1e-6
    )


def _mountain_car_start(obs: np.ndarray) -> bool:
    return bool(-0.6 <= obs[0] <= -0.4 and obs[1] == 0.0)


def _lunar_lander_start(obs: np.ndarray) -> bool:
    return bool(abs(obs[0]) < 0.05 and 1.35 < obs[1] < 1.45 and obs[6] == 0 and obs[7] == 0)


def _pendulum_start(obs: np.ndarray) -> bool:
    # The angle is uniform in [-pi, pi] and the angular velocity in [-1, 1].
    return bool(abs(obs[0] ** 2 + obs[1] ** 2 - 1) < 1e-5 and (len(obs) == 2 or abs(obs[2]) <= 1.0))


def _cue_recall_start(obs: np.ndarray) -> bool:
    return bool(obs[:2].sum() == 1.0 and obs[2] == 0.0)


def _cue_recall_pixels_start(obs: np.ndarray) -> bool:
    return bool(obs.sum() == 12 * 12 * 255 and not obs[0, -4:].any())


# What the first observation of an episode looks like, per env id.
IS_EPISODE_START: dict[str, Callable[[np.ndarray], bool]] = {
    "CartPole-v0": _cartpole_start,
    "CartPole-v1": _cartpole_start,
    "CartPoleMasked-v1": _cartpole_start,
    "CartPoleFlicker-v1": _cartpole_start,
    "CueRecall-v0": _cue_recall_start,
    "CueRecallPixels-v0": _cue_recall_pixels_start,
    "Acrobot-v1": _acrobot_start,
    "MountainCar-v0": _mountain_car_start,
    "LunarLander-v3": _lunar_lander_start,
    "Pendulum-v1": _pendulum_start,
    "PendulumMasked-v1": _pendulum_start,
    "MountainCarContinuous-v0": _mountain_car_start,
    "LunarLanderContinuous-v3": _lunar_lander_start,
}


def _random_actions(envs: gym.vector.VectorEnv, rng: np.random.Generator) -> np.ndarray:
    space = envs.single_action_space
    if isinstance(space, gym.spaces.Box):  # float32 (N, d) within the bounds
        return rng.uniform(space.low, space.high, (envs.num_envs, *space.shape)).astype(np.float32)
    return rng.integers(0, space.n, size=envs.num_envs)


def _run(envs: gym.vector.VectorEnv, actions: list[np.ndarray]) -> list[tuple[np.ndarray, ...]]:
    """Step through `actions`, returning every output array (obs, rewards, flags, finals)."""
    out = []
    for action in actions:
        obs, reward, terminated, truncated, info = envs.step(action)
        out.append((obs, reward, terminated, truncated, info["final_obs"], info["_final_obs"]))
    return out


def _assert_same_runs(a: list[tuple[np.ndarray, ...]], b: list[tuple[np.ndarray, ...]]) -> None:
    assert len(a) == len(b)
    for step_a, step_b in zip(a, b, strict=True):
        for x, y in zip(step_a, step_b, strict=True):
            np.testing.assert_array_equal(x, y)


def _assert_plain(value: Any) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str)
            _assert_plain(item)
    elif isinstance(value, list):
        for item in value:
            _assert_plain(item)
    else:
        assert type(value) in (int, float, bool, str, type(None)), type(value)


def test_allow_list_entries_are_consistent() -> None:
    # Plugin envs (tests/rlcore/test_plugins.py) are on the list once a test loaded them.
    builtin = {env_id: info for env_id, info in ENVS.items() if info.family != "plugin"}
    for env_id, info in builtin.items():
        assert info.id == env_id
        assert info.description
        assert info.max_episode_steps is not None
        assert info.family in ("classic", "memory", "atari", "popgym")
        assert info.action_names and len(set(info.action_names)) == len(info.action_names)
        assert set(info.options) <= {
            "frame_stack",
            "repeat_action_probability",
            "episodic_life",
            "flicker",
            "previous_action",
        }
        assert info.pixels == (info.family == "atari" or env_id == "CueRecallPixels-v0")
    assert set(_BUILDERS) == set(ENVS)
    own = {env_id: info for env_id, info in builtin.items() if info.family != "popgym"}
    memory_ids = {env_id for env_id, info in own.items() if info.needs_memory}
    assert memory_ids == {
        "CartPoleMasked-v1",
        "CartPoleFlicker-v1",
        "CueRecall-v0",
        "CueRecallPixels-v0",
        "PendulumMasked-v1",
    }
    assert {env_id for env_id, info in own.items() if info.action_kind == "gaussian"} == set(BOX_IDS)
    assert all(info.action_kind in ("discrete", "multi_discrete", "gaussian") for info in ENVS.values())
    assert ENVS["CartPole-v1"].action_names == ("left", "right")
    assert ENVS["CartPole-v0"].max_episode_steps == 200
    assert ENVS["CartPole-v1"].max_episode_steps == 500
    for env_id in SYNC_IDS:
        assert ENVS[env_id].max_episode_steps == gym.spec(env_id).max_episode_steps


@pytest.mark.parametrize(
    "env_id",
    [
        "Pong-v5",
        "ALE/Pong-v4",
        "ale_py.env:AtariEnv",
        "cartpole-v1",
        "CartPole-v1 ",
        "gymnasium.envs.classic_control.cartpole:CartPoleEnv",
        "os:system",
    ],
)
def test_unknown_ids_are_refused(env_id: str) -> None:
    with pytest.raises(ValueError, match=r"allowed: .*CartPole-v1"):
        make_vec_env(env_id, 2, 0)
    with pytest.raises(ValueError, match="unknown environment"):
        supports_state(env_id)


def test_num_envs_must_be_positive() -> None:
    with pytest.raises(ValueError, match="num_envs"):
        make_vec_env("CartPole-v1", 0, 0)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_contract_and_same_step_autoreset(env_id: str) -> None:
    num_envs = 3
    max_steps = ENVS[env_id].max_episode_steps
    envs = make_vec_env(env_id, num_envs, seed=1)
    obs_shape = envs.single_observation_space.shape
    info = ENVS[env_id]
    space = envs.single_action_space
    if info.action_kind == "gaussian":
        assert isinstance(space, gym.spaces.Box) and space.dtype == np.float32
        assert space.shape == info.action_shape and len(info.action_names) == space.shape[0]
        assert tuple(space.low) == info.action_low and tuple(space.high) == info.action_high
        assert info.num_actions == space.shape[0]
    else:
        assert isinstance(space, gym.spaces.Discrete)
        assert space.n == len(info.action_names) == info.num_actions
    dtype = envs.single_observation_space.dtype
    assert dtype == (np.uint8 if ENVS[env_id].pixels else np.float32)
    assert obs_shape == observation_shape(env_id) == ENVS[env_id].observation_shape
    obs, _ = envs.reset(seed=1)
    assert obs.shape == (num_envs, *obs_shape) and obs.dtype == dtype
    rng = np.random.default_rng(0)
    lengths = np.zeros(num_envs, dtype=int)
    episodes_ended = np.zeros(num_envs, dtype=int)
    for _ in range(max_steps + 5):
        obs, reward, terminated, truncated, info = envs.step(_random_actions(envs, rng))
        lengths += 1
        assert obs.shape == (num_envs, *obs_shape) and obs.dtype == dtype
        assert reward.shape == (num_envs,) and reward.dtype == np.float32
        assert terminated.dtype == np.bool_ and truncated.dtype == np.bool_
        final_obs, ended = info["final_obs"], info["_final_obs"]
        assert final_obs.shape == obs.shape and final_obs.dtype == dtype
        assert ended.dtype == np.bool_
        np.testing.assert_array_equal(ended, terminated | truncated)
        assert np.all(lengths <= max_steps)
        for i in np.flatnonzero(ended):
            # A truncation exactly at the limit means no step was spent on a reset.
            assert not truncated[i] or lengths[i] == max_steps
            assert IS_EPISODE_START[env_id](obs[i]), obs[i]
            assert not np.array_equal(final_obs[i], obs[i]) or not obs[i].any()  # flicker
        episodes_ended += ended
        lengths[ended] = 0
    assert np.all(episodes_ended >= 1)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_same_seed_same_trajectory(env_id: str) -> None:
    rng = np.random.default_rng(1)
    first, second, other = (make_vec_env(env_id, 8, seed=s) for s in (7, 7, 8))
    obs_first, _ = first.reset(seed=7)
    np.testing.assert_array_equal(obs_first, second.reset(seed=7)[0])
    assert not np.array_equal(obs_first, other.reset(seed=8)[0])
    actions = [_random_actions(first, rng) for _ in range(40)]
    _assert_same_runs(_run(first, actions), _run(second, actions))


@pytest.mark.parametrize("env_id", CARTPOLE_IDS)
def test_cartpole_dynamics_match_single_env(env_id: str) -> None:
    vec = make_vec_env(env_id, 1, seed=3)
    single = gym.make(env_id)
    single.reset(seed=3)
    rng = np.random.default_rng(3)
    obs = vec.reset(seed=3)[0]
    single.unwrapped.state = vec.unwrapped.state[:, 0].copy()
    outcomes: list[str] = []
    for _ in range(3 * ENVS[env_id].max_episode_steps):
        # Alternating random and balancing episodes gives both falls and time limits.
        balance = len(outcomes) % 2 == 1
        action = int(3 * obs[0, 2] + obs[0, 3] > 0) if balance else int(rng.integers(2))
        s_obs, s_reward, s_term, s_trunc, _ = single.step(action)
        obs, reward, term, trunc, info = vec.step(np.array([action]))
        assert (reward[0], term[0], trunc[0]) == (s_reward, s_term, s_trunc)
        if term[0] or trunc[0]:
            outcomes.append("terminated" if term[0] else "truncated")
            np.testing.assert_allclose(info["final_obs"][0], s_obs, rtol=0, atol=1e-6)
            single.reset()
            single.unwrapped.state = vec.unwrapped.state[:, 0].copy()
        else:
            np.testing.assert_allclose(obs[0], s_obs, rtol=0, atol=1e-6)
    assert set(outcomes) == {"terminated", "truncated"}


Pairs = list[tuple[np.ndarray, np.ndarray]]


def _paired_with_cartpole(env_id: str, steps: int, num_envs: int) -> tuple[Pairs, Pairs]:
    """(variant, CartPole-v1) pairs of observations and of final observations.

    Both run under the same seed and actions, so they share their physics.
    """
    rng = np.random.default_rng(4)
    variant, plain = make_vec_env(env_id, num_envs, 4), make_vec_env("CartPole-v1", num_envs, 4)
    observations = [(variant.reset(seed=4)[0], plain.reset(seed=4)[0])]
    actions = [_random_actions(plain, rng) for _ in range(steps)]
    variant_run, plain_run = _run(variant, actions), _run(plain, actions)
    observations += [(v[0], p[0]) for v, p in zip(variant_run, plain_run, strict=True)]
    finals = [(v[4], p[4]) for v, p in zip(variant_run, plain_run, strict=True)]
    return observations, finals


def test_masked_cartpole_shows_position_and_angle_only() -> None:
    envs = make_vec_env("CartPoleMasked-v1", 4, 4)
    assert envs.single_observation_space.shape == (2,)
    observations, final_observations = _paired_with_cartpole("CartPoleMasked-v1", 100, 4)
    for masked, plain in observations + final_observations:
        assert masked.shape == (4, 2)
        np.testing.assert_array_equal(masked, plain[:, [0, 2]])


def test_flicker_cartpole_blanks_about_half_the_observations() -> None:
    observations, final_observations = _paired_with_cartpole("CartPoleFlicker-v1", 300, 16)
    blank = []
    for flickered, plain in observations:
        rows_blank = np.all(flickered == 0, axis=1)
        np.testing.assert_array_equal(flickered[~rows_blank], plain[~rows_blank])
        blank.extend(rows_blank)
    assert 0.45 < np.mean(blank) < 0.55
    for flickered, plain in final_observations:
        rows_blank = np.all(flickered == 0, axis=1)
        np.testing.assert_array_equal(flickered[~rows_blank], plain[~rows_blank])


def _cue_recall_episode_rewards(policy: str, num_envs: int, episodes: int) -> np.ndarray:
    """Final rewards of CueRecall episodes; `policy` is 'right', 'wrong' or 'zero'."""
    length = CUE_RECALL_DELAY + 2
    envs = make_vec_env("CueRecall-v0", num_envs, seed=5)
    obs, _ = envs.reset(seed=5)
    finals = []
    for _ in range(episodes):
        cue = obs[:, :2].argmax(axis=1)
        assert np.all(obs[:, :2].sum(axis=1) == 1) and np.all(obs[:, 2] == 0)
        answer = {"right": cue, "wrong": 1 - cue, "zero": np.zeros_like(cue)}[policy]
        for t in range(length):
            last = t == length - 1
            assert np.all(obs[:, 2] == float(last))
            if 0 < t < length - 1:
                assert np.all(obs == 0)
            obs, reward, terminated, truncated, _ = envs.step(answer)
            assert np.all(terminated == last) and not truncated.any()
            if not last:
                assert np.all(reward == 0)
        finals.append(reward)
    return np.concatenate(finals)


def test_cue_recall_scores_the_answer() -> None:
    assert np.all(_cue_recall_episode_rewards("right", 8, 5) == 1.0)
    assert np.all(_cue_recall_episode_rewards("wrong", 8, 5) == -1.0)
    assert abs(_cue_recall_episode_rewards("zero", 64, 50).mean()) < 0.1


def test_cue_recall_refuses_invalid_actions() -> None:
    envs = make_vec_env("CueRecall-v0", 2, 0)
    with pytest.raises(ValueError, match="invalid actions"):
        envs.step(np.array([0, 2]))


@pytest.mark.parametrize("env_id", STATEFUL_IDS)
def test_state_round_trip_is_exact(env_id: str) -> None:
    rng = np.random.default_rng(6)
    envs = make_vec_env(env_id, 3, seed=6)
    # Save near the time limit so the replayed steps cross episode ends and resets.
    for _ in range(ENVS[env_id].max_episode_steps - 7):
        envs.step(_random_actions(envs, rng))
    state = get_env_state(envs)
    _assert_plain(state)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)

    actions = [_random_actions(envs, rng) for _ in range(30)]
    original = _run(envs, actions)
    assert any(step[5].any() for step in original)
    # Also catches saved fields whose effect the replayed steps happen not to show.
    state_after = get_env_state(envs)

    set_env_state(envs, state)
    assert get_env_state(envs) == state
    _assert_same_runs(original, _run(envs, actions))
    assert get_env_state(envs) == state_after
    resumed = make_vec_env(env_id, 3, seed=123)  # a restarted process, differently seeded
    set_env_state(resumed, loaded)
    assert get_env_state(resumed) == state
    _assert_same_runs(original, _run(resumed, actions))
    assert get_env_state(resumed) == state_after


def test_state_of_another_env_is_refused() -> None:
    state = get_env_state(make_vec_env("CartPole-v1", 3, 0))
    with pytest.raises(ValueError, match="env state is for"):
        set_env_state(make_vec_env("CueRecall-v0", 3, 0), state)
    with pytest.raises(ValueError, match="env state is for"):
        set_env_state(make_vec_env("CartPole-v1", 2, 0), state)
    with pytest.raises(ValueError, match="env state is for"):
        set_env_state(make_vec_env("CartPole-v0", 3, 0), state)
    with pytest.raises(ValueError, match="env state is for"):
        set_env_state(make_vec_env("CartPoleFlicker-v1", 3, 0), state)


@pytest.mark.parametrize("env_id", ["LunarLander-v3", "LunarLanderContinuous-v3"])
def test_lunar_lander_state_is_not_supported(env_id: str) -> None:
    assert not supports_state(env_id)
    assert supports_state("CartPole-v1")
    envs = make_vec_env(env_id, 2, 0)
    with pytest.raises(EnvStateNotSupported, match=env_id):
        get_env_state(envs)
    with pytest.raises(NotImplementedError):
        set_env_state(envs, {})


def test_masked_pendulum_shows_cos_and_sin_of_the_angle_only() -> None:
    full, masked = make_vec_env("Pendulum-v1", 3, seed=4), make_vec_env("PendulumMasked-v1", 3, seed=4)
    rng = np.random.default_rng(0)
    for _ in range(20):
        actions = _random_actions(full, rng)
        obs_full, reward_full, *_ = full.step(actions)
        obs_masked, reward_masked, *_ = masked.step(actions)
        np.testing.assert_array_equal(obs_masked, obs_full[:, :2])
        np.testing.assert_array_equal(reward_masked, reward_full)
    assert masked.single_observation_space.shape == (2,)


def test_lunar_lander_continuous_is_the_continuous_lander() -> None:
    envs = make_vec_env("LunarLanderContinuous-v3", 2, seed=0)
    assert all(env.unwrapped.continuous for env in envs.env.envs)
    envs.step(np.zeros((2, 2), np.float32))


def test_state_of_foreign_env_is_refused() -> None:
    with pytest.raises(TypeError, match="make_vec_env"):
        get_env_state(gym.make_vec("CartPole-v1", 2, vectorization_mode="sync"))


# --- options ----------------------------------------------------------------------


def test_options_are_checked() -> None:
    for bad in ({"frame_stack": 2}, {"repeat_action_probability": 1.5}, {"flicker": -0.1}):
        with pytest.raises(ValueError, match=f"option {next(iter(bad))}"):
            EnvOptions(**bad)
    assert EnvOptions().changed() == ()
    assert EnvOptions(frame_stack=1, flicker=0.5).changed() == ("frame_stack", "flicker")


@pytest.mark.parametrize(
    ("env_id", "options", "refused"),
    [
        ("CartPole-v1", EnvOptions(frame_stack=1), "frame_stack"),
        ("CartPoleFlicker-v1", EnvOptions(flicker=0.5), "flicker"),
        ("CueRecall-v0", EnvOptions(episodic_life=True), "episodic_life"),
        ("CueRecallPixels-v0", EnvOptions(repeat_action_probability=0.0), "repeat_action_probability"),
        ("CueRecallPixels-v0", EnvOptions(frame_stack=1, flicker=0.5), "frame_stack"),
    ],
)
def test_options_that_do_not_apply_are_refused(env_id: str, options: EnvOptions, refused: str) -> None:
    with pytest.raises(ValueError, match=f"option {refused} does not apply to {env_id}"):
        make_vec_env(env_id, 2, 0, options)
    with pytest.raises(ValueError, match=f"option {refused}"):
        check_options(env_id, options)


def test_default_options_apply_to_every_env() -> None:
    for env_id in ENVS:
        assert check_options(env_id, EnvOptions()) == EnvOptions()
        assert check_options(env_id) == EnvOptions()


# --- pixel CueRecall --------------------------------------------------------------


def _pixel_cue(obs: np.ndarray) -> np.ndarray:
    """0 where the square is in the left half, 1 in the right half (asserts it is shown)."""
    left, right = obs[:, 0, :, :18].sum(axis=(1, 2)), obs[:, 0, :, 18:].sum(axis=(1, 2))
    assert np.all((left == 0) != (right == 0))
    return (right > 0).astype(np.int64)


def _cue_recall_pixels_rewards(policy: str, num_envs: int, episodes: int) -> np.ndarray:
    """Final rewards of CueRecallPixels episodes; `policy` is 'right' or 'wrong'."""
    length = CUE_RECALL_PIXELS_DELAY + 2
    envs = make_vec_env("CueRecallPixels-v0", num_envs, seed=5)
    obs, _ = envs.reset(seed=5)
    assert envs.single_observation_space.shape == (1, 36, 36)
    finals = []
    for _ in range(episodes):
        cue = _pixel_cue(obs)
        # The square is 12x12 and bright; the bottom rows stay dark until the query.
        assert np.all(obs.reshape(num_envs, -1).max(axis=1) == 255)
        assert np.all((obs > 0).sum(axis=(1, 2, 3)) == 144)
        answer = cue if policy == "right" else 1 - cue
        for t in range(length):
            last = t == length - 1
            if 0 < t < length - 1:
                assert not obs.any()
            if last:
                np.testing.assert_array_equal(obs[:, 0, -4:], 255)
                assert not obs[:, 0, :-4].any()
            obs, reward, terminated, truncated, info = envs.step(answer)
            assert obs.dtype == np.uint8 and info["final_obs"].dtype == np.uint8
            assert np.all(terminated == last) and not truncated.any()
            if not last:
                assert np.all(reward == 0)
        finals.append(reward)
    return np.concatenate(finals)


def test_cue_recall_pixels_scores_the_answer() -> None:
    right = _cue_recall_pixels_rewards("right", 8, 6)
    assert np.all(right == 1.0)
    assert np.all(_cue_recall_pixels_rewards("wrong", 8, 6) == -1.0)


def test_cue_recall_pixels_shows_both_cues() -> None:
    envs = make_vec_env("CueRecallPixels-v0", 64, seed=2)
    cues = _pixel_cue(envs.reset(seed=2)[0])
    assert 0.3 < cues.mean() < 0.7


def _flicker_runs(seed: int, steps: int, num_envs: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Observations of flickered and plain CueRecallPixels under the same seed and actions."""
    flickered = make_vec_env("CueRecallPixels-v0", num_envs, seed, EnvOptions(flicker=0.5))
    plain = make_vec_env("CueRecallPixels-v0", num_envs, seed)
    out_f, out_p = [flickered.reset(seed=seed)[0]], [plain.reset(seed=seed)[0]]
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        action = _random_actions(plain, rng)
        out_f.append(flickered.step(action)[0])
        out_p.append(plain.step(action)[0])
    return out_f, out_p


def test_cue_recall_pixels_flicker_blanks_frames_at_the_set_rate() -> None:
    flickered, plain = _flicker_runs(seed=3, steps=99, num_envs=10)
    blank = []
    for f, p in zip(flickered, plain, strict=True):
        assert f.dtype == np.uint8
        rows_blank = ~f.reshape(len(f), -1).any(axis=1)
        rows_shown = p.reshape(len(p), -1).any(axis=1)
        np.testing.assert_array_equal(f[~rows_blank], p[~rows_blank])
        blank.extend(rows_blank[rows_shown])  # a blank frame of the task says nothing
    n = len(blank)
    assert n > 300
    # Binomial(n, 0.5): 4 standard deviations either side.
    assert abs(np.sum(blank) - n / 2) < 4 * math.sqrt(n / 4)
    again, _ = _flicker_runs(seed=3, steps=99, num_envs=10)
    _assert_same_runs([tuple(flickered)], [tuple(again)])
    other, _ = _flicker_runs(seed=4, steps=99, num_envs=10)
    assert not all(np.array_equal(a, b) for a, b in zip(flickered, other, strict=True))


def test_cue_recall_pixels_flicker_state_round_trip() -> None:
    options = EnvOptions(flicker=0.5)
    envs = make_vec_env("CueRecallPixels-v0", 4, 7, options)
    rng = np.random.default_rng(7)
    for _ in range(9):
        envs.step(_random_actions(envs, rng))
    state = get_env_state(envs)
    _assert_plain(state)
    actions = [_random_actions(envs, rng) for _ in range(20)]
    original = _run(envs, actions)
    resumed = make_vec_env("CueRecallPixels-v0", 4, 8, options)
    set_env_state(resumed, state)
    _assert_same_runs(original, _run(resumed, actions))
    with pytest.raises(ValueError, match="env state is for"):
        set_env_state(make_vec_env("CueRecallPixels-v0", 4, 0, EnvOptions(flicker=0.25)), state)
    with pytest.raises(ValueError, match="env state is for"):
        set_env_state(make_vec_env("CueRecallPixels-v0", 4, 0), state)
