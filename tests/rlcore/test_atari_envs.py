"""Atari through ALE's vector env: the contract, seeding, episodic life, flicker and exact restore.

Breakout is the workhorse: a random policy loses a life every ~25 steps and a game every
~150-250, so a few hundred steps cross several episode ends.
"""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
import torch
from gymnasium.vector import VectorEnv

from rlcore.envs import (
    ATARI_GAMES,
    ENVS,
    EnvOptions,
    get_env_state,
    make_vec_env,
    observation_shape,
    set_env_state,
)
from rlcore.envs.atari import NOOP, AtariVecEnv

BREAKOUT = "ALE/Breakout-v5"
BREAKOUT_LIVES = 5

Step = tuple[np.ndarray, ...]


def _actions(envs: VectorEnv, rng: np.random.Generator, steps: int) -> list[np.ndarray]:
    return [rng.integers(0, envs.single_action_space.n, size=envs.num_envs) for _ in range(steps)]


def _run(envs: VectorEnv, actions: list[np.ndarray]) -> list[Step]:
    """Every array each step returns: obs, reward, terminated, truncated and the info arrays."""
    out = []
    for action in actions:
        obs, reward, terminated, truncated, info = envs.step(action)
        keys = ("final_obs", "_final_obs", "game_over", "lives")
        out.append((obs, reward, terminated, truncated, *(info[k] for k in keys)))
    return out


def _assert_same_runs(a: list[Step], b: list[Step]) -> None:
    assert len(a) == len(b)
    for step_a, step_b in zip(a, b, strict=True):
        for x, y in zip(step_a, step_b, strict=True):
            np.testing.assert_array_equal(x, y)


def _is_reset_stack(stack: np.ndarray) -> bool:
    """ALE clears the frame stack at a reset: every frame but the last is zeros."""
    return not stack[:-1].any() and bool(stack[-1].any())


def test_importing_the_envs_and_the_spec_loads_neither_ale_nor_torch() -> None:
    code = (
        "import sys, rlcore.spec, rlcore.envs; "
        "assert 'ale_py' not in sys.modules, 'ale_py'; assert 'torch' not in sys.modules, 'torch'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_action_names_match_ale_for_every_game() -> None:
    import ale_py

    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)
    atari_ids = {env_id for env_id, info in ENVS.items() if info.family == "atari"}
    assert atari_ids == set(ATARI_GAMES)
    assert len(atari_ids) == 9
    for env_id, game in ATARI_GAMES.items():
        ale = ale_py.ALEInterface()
        ale.loadROM(ale_py.roms.get_rom_path(game.rom))
        assert tuple(a.name for a in ale.getMinimalActionSet()) == game.action_names, env_id
        assert ENVS[env_id].action_names == game.action_names
        assert game.action_names[NOOP] == "NOOP"  # what a replay idles with
        info = ENVS[env_id]
        assert info.pixels and info.max_episode_steps == 27_000 and not info.needs_memory
        assert info.observation_shape == observation_shape(env_id) == (4, 84, 84)


@pytest.mark.parametrize("frame_stack", [1, 4])
def test_contract_and_same_step_autoreset(frame_stack: int) -> None:
    num_envs = 3
    envs = make_vec_env(BREAKOUT, num_envs, seed=1, options=EnvOptions(frame_stack=frame_stack))
    shape = (num_envs, frame_stack, 84, 84)
    assert envs.single_observation_space.shape == shape[1:]
    assert observation_shape(BREAKOUT, EnvOptions(frame_stack=frame_stack)) == shape[1:]
    assert envs.single_observation_space.dtype == np.uint8
    assert envs.single_action_space.n == len(ENVS[BREAKOUT].action_names)
    obs, info = envs.reset(seed=1)
    assert obs.shape == shape and obs.dtype == np.uint8
    np.testing.assert_array_equal(info["lives"], BREAKOUT_LIVES)
    lives = info["lives"]
    rng = np.random.default_rng(1)
    games, silent_life_losses = 0, 0
    for action in _actions(envs, rng, 300):
        obs, reward, terminated, truncated, info = envs.step(action)
        assert obs.shape == shape and obs.dtype == np.uint8
        assert reward.shape == (num_envs,) and reward.dtype == np.float32
        assert terminated.dtype == np.bool_ and truncated.dtype == np.bool_
        final_obs, ended, game_over = info["final_obs"], info["_final_obs"], info["game_over"]
        assert final_obs.shape == shape and final_obs.dtype == np.uint8
        assert ended.dtype == np.bool_ and game_over.dtype == np.bool_
        np.testing.assert_array_equal(ended, terminated | truncated)
        np.testing.assert_array_equal(game_over, terminated | truncated)
        assert not final_obs[~ended].any()
        for i in np.flatnonzero(ended):
            assert final_obs[i].any() and not np.array_equal(final_obs[i], obs[i])
            assert info["lives"][i] == BREAKOUT_LIVES
            if frame_stack > 1:
                assert _is_reset_stack(obs[i])
        # Without episodic life a lost life is no episode end.
        silent_life_losses += int(np.sum((info["lives"] < lives) & ~ended))
        games += int(ended.sum())
        lives = info["lives"]
    assert games >= 2 and silent_life_losses >= 8


def test_invalid_actions_are_refused() -> None:
    envs = make_vec_env(BREAKOUT, 2, 0)
    for bad in (np.array([0, 4]), np.array([-1, 0]), np.array([0.0, 1.0]), np.array([0, 1, 2])):
        with pytest.raises(ValueError, match="invalid actions"):
            envs.step(bad)


def test_same_seed_same_frames_whatever_the_number_of_envs() -> None:
    rng = np.random.default_rng(2)
    first, second, wider, other = (
        make_vec_env(BREAKOUT, n, seed=s) for n, s in ((2, 7), (2, 7), (3, 7), (2, 8))
    )
    np.testing.assert_array_equal(first.reset(seed=7)[0], second.reset(seed=7)[0])
    actions = _actions(wider, rng, 150)
    narrow = [a[:2] for a in actions]
    run = _run(first, narrow)
    _assert_same_runs(run, _run(second, narrow))
    # Env i's games depend on the seed and on i only.
    wide_run = [tuple(x[:2] for x in step) for step in _run(wider, actions)]
    _assert_same_runs(run, wide_run)
    assert any(step[4].any() for step in run)  # the comparison crossed a game end
    other_run = _run(other, narrow)
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(run, other_run, strict=True))


def test_rewards_are_the_raw_game_score() -> None:
    envs = make_vec_env("ALE/SpaceInvaders-v5", 2, seed=3)
    rewards = np.concatenate([step[1] for step in _run(envs, _actions(envs, np.random.default_rng(3), 200))])
    assert rewards.max() > 1.0  # an invader is worth 5 to 30 points; clipping would give 1
    assert np.all(rewards % 5 == 0)


def test_episodic_life_ends_an_episode_per_life_and_the_game_goes_on() -> None:
    envs = make_vec_env(BREAKOUT, 3, seed=4, options=EnvOptions(episodic_life=True))
    lives = envs.reset(seed=4)[1]["lives"]
    losses_this_game = np.zeros(3, dtype=int)
    games = 0
    for action in _actions(envs, np.random.default_rng(4), 400):
        obs, _, terminated, truncated, info = envs.step(action)
        game_over = info["game_over"]
        np.testing.assert_array_equal(info["_final_obs"], terminated | truncated)
        assert not (game_over & ~(terminated | truncated)).any()
        for i in np.flatnonzero(terminated & ~game_over):
            # A lost life: the episode ends for learning, the game goes on from this frame.
            assert info["lives"][i] == lives[i] - 1 > 0
            np.testing.assert_array_equal(info["final_obs"][i], obs[i])
            assert not _is_reset_stack(obs[i])
            losses_this_game[i] += 1
        for i in np.flatnonzero(game_over):
            assert losses_this_game[i] == BREAKOUT_LIVES - 1
            assert info["lives"][i] == BREAKOUT_LIVES and _is_reset_stack(obs[i])
            assert not np.array_equal(info["final_obs"][i], obs[i])
            losses_this_game[i] = 0
            games += 1
        lives = info["lives"]
    assert games >= 2


def _through_storage(state: dict[str, Any]) -> dict[str, Any]:
    """The state after torch.save / torch.load(weights_only=True) and a JSON round trip."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return json.loads(json.dumps(torch.load(buffer, weights_only=True)))


# (options, reseed_after or None for make_vec_env's default)
RESTORE_CASES = {
    "defaults": (EnvOptions(), None),
    "stack1-episodic-reseed-every-game": (EnvOptions(frame_stack=1, episodic_life=True), 0),
    "episodic-reseed-after-100": (EnvOptions(episodic_life=True), 100),
    "flicker-episodic": (EnvOptions(episodic_life=True, flicker=0.5), None),
}


def _make(options: EnvOptions, reseed_after: int | None, seed: int) -> VectorEnv:
    if reseed_after is None:
        return make_vec_env(BREAKOUT, 3, seed, options)
    envs = AtariVecEnv(BREAKOUT, 3, options, reseed_after=reseed_after)
    envs.reset(seed=seed)
    return envs


@pytest.mark.parametrize("case", RESTORE_CASES)
def test_restore_into_a_new_env_is_exact(case: str) -> None:
    options, reseed_after = RESTORE_CASES[case]
    envs = _make(options, reseed_after, seed=5)
    rng = np.random.default_rng(5)
    before = _run(envs, _actions(envs, rng, 300))
    assert sum(step[6].sum() for step in before) >= 2  # games ended before the save
    state = get_env_state(envs)
    actions = _actions(envs, rng, 200)
    original = _run(envs, actions)
    assert sum(step[6].sum() for step in original) >= 1
    if options.episodic_life:
        assert sum((step[2] & ~step[6]).sum() for step in original) >= 3
    state_after = get_env_state(envs)

    resumed = _make(options, reseed_after, seed=123)  # a restarted process, differently seeded
    set_env_state(resumed, _through_storage(state))
    assert get_env_state(resumed) == state
    _assert_same_runs(original, _run(resumed, actions))
    assert get_env_state(resumed) == state_after


def test_state_of_other_options_is_refused() -> None:
    state = get_env_state(make_vec_env(BREAKOUT, 2, 0))
    for env_id, options in [
        (BREAKOUT, EnvOptions(frame_stack=1)),
        (BREAKOUT, EnvOptions(episodic_life=True)),
        (BREAKOUT, EnvOptions(repeat_action_probability=0.0)),
        ("ALE/Pong-v5", EnvOptions()),
    ]:
        with pytest.raises(ValueError, match="env state is for"):
            set_env_state(make_vec_env(env_id, 2, 0, options), state)


def test_flicker_blanks_whole_frame_stacks_at_the_set_rate() -> None:
    steps, num_envs = 200, 2
    options = EnvOptions(flicker=0.5)
    flickered, plain = make_vec_env(BREAKOUT, num_envs, 6, options), make_vec_env(BREAKOUT, num_envs, 6)
    actions = _actions(plain, np.random.default_rng(6), steps)
    flickered_run, plain_run = _run(flickered, actions), _run(plain, actions)
    blank = []
    for f, p in zip(flickered_run, plain_run, strict=True):
        for obs_f, obs_p in ((f[0], p[0]), (f[4], p[4])):  # observations and final observations
            assert obs_f.dtype == np.uint8
            rows_blank = ~obs_f.reshape(num_envs, -1).any(axis=1)
            np.testing.assert_array_equal(obs_f[~rows_blank], obs_p[~rows_blank])
        blank.extend(~f[0].reshape(num_envs, -1).any(axis=1))
        for k in (1, 2, 3, 5, 6, 7):  # rewards, flags and lives are not touched
            np.testing.assert_array_equal(f[k], p[k])
    n = len(blank)
    # Binomial(n, 0.5): 4 standard deviations either side.
    assert abs(np.sum(blank) - n / 2) < 4 * math.sqrt(n / 4)
    again = make_vec_env(BREAKOUT, num_envs, 6, options)
    _assert_same_runs(flickered_run[:50], _run(again, actions[:50]))
