"""POPGym under the package contract: the static table, flat encodings, same-step autoreset,
seeding, the previous-action option and exact restore by replay."""

from __future__ import annotations

import io
import random
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from rlcore.envs import (
    ENVS,
    POPGYM_ENVS,
    EnvOptions,
    check_options,
    get_env_state,
    make_vec_env,
    observation_shape,
    set_env_state,
)
from rlcore.envs.popgym import PopgymVecEnv, make_popgym_env
from rlcore.envs.spaces import encode, flat_box, flat_size

POPGYM_IDS = sorted(POPGYM_ENVS)
PREVIOUS = EnvOptions(previous_action=True)
# One or more of each kind: cards, physics, mazes, Box and MultiDiscrete actions, tuple
# and MultiDiscrete observations, episodes that end early.
RESTORE_IDS = [
    "popgym/AutoencodeEasy",
    "popgym/CountRecallMedium",
    "popgym/PositionOnlyCartPoleEasy",
    "popgym/NoisyPositionOnlyPendulumHard",
    "popgym/LabyrinthEscapeEasy",
    "popgym/MineSweeperEasy",
    "popgym/BattleshipEasy",
    "popgym/ConcentrationEasy",
    "popgym/MultiarmedBanditEasy",
]


def _actions(space: spaces.Space, num_envs: int, rng: np.random.Generator) -> np.ndarray:
    """Random actions of one batch, as a trainer hands them over (Box ones partly out of bounds)."""
    if isinstance(space, spaces.Discrete):
        return rng.integers(0, space.n, size=num_envs)
    if isinstance(space, spaces.MultiDiscrete):
        return rng.integers(0, space.nvec, size=(num_envs, *space.nvec.shape))
    assert isinstance(space, spaces.Box)
    return rng.normal(0.0, 2.0, size=(num_envs, *space.shape)).astype(np.float32)


def _run(envs: gym.vector.VectorEnv, actions: list[np.ndarray]) -> list[tuple[np.ndarray, ...]]:
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


def _popgym_max_steps(env: gym.Env) -> int:
    """The longest episode, from the popgym env's own attributes."""
    name = type(env).__name__
    if name.startswith("HigherLower"):
        return 52 * env.num_decks - 1
    if name.startswith("Concentration"):
        return env.episode_length
    if name.startswith("Labyrinth"):
        return env.max_episode_length - 1  # truncated at step max_episode_length - 1
    return env.max_episode_length


# --- the table --------------------------------------------------------------------


def test_every_task_is_allowed_at_three_levels() -> None:
    tasks = [
        "RepeatFirst",
        "RepeatPrevious",
        "Autoencode",
        "CountRecall",
        "PositionOnlyCartPole",
        "VelocityOnlyCartPole",
        "NoisyPositionOnlyCartPole",
        "MultiarmedBandit",
        "HigherLower",
        "LabyrinthExplore",
        "LabyrinthEscape",
        "PositionOnlyPendulum",
        "NoisyPositionOnlyPendulum",
        "Battleship",
        "MineSweeper",
        "Concentration",
    ]
    expected = {f"popgym/{task}{level}" for task in tasks for level in ("Easy", "Medium", "Hard")}
    assert set(POPGYM_IDS) == expected
    assert {env_id for env_id, info in ENVS.items() if info.family == "popgym"} == expected


@pytest.mark.parametrize("env_id", POPGYM_IDS)
def test_the_static_table_matches_popgym(env_id: str) -> None:
    entry, info = POPGYM_ENVS[env_id], ENVS[env_id]
    env = make_popgym_env(env_id)
    assert type(env).__name__ == env_id.removeprefix("popgym/") == entry.class_name
    assert type(env).__module__ == f"popgym.envs.{entry.module}"
    assert info.max_episode_steps == entry.max_episode_steps == _popgym_max_steps(env)
    assert info.observation_shape == (flat_size(env.observation_space),) == (entry.observation_size,)
    assert entry.action_size == flat_size(env.action_space)
    if isinstance(env.action_space, spaces.Discrete):
        assert len(info.action_names) == env.action_space.n
    else:
        assert len(info.action_names) == env.action_space.shape[0]
    assert len(set(info.action_names)) == len(info.action_names)
    assert info.needs_memory and info.solved_return is None and not info.pixels
    assert info.options == ("previous_action",) and info.description.startswith("POPGym ")


@pytest.mark.parametrize("env_id", POPGYM_IDS)
def test_observation_shape_matches_the_built_env(env_id: str) -> None:
    for options in (EnvOptions(), PREVIOUS):
        envs = make_vec_env(env_id, 2, seed=0, options=options)
        obs, _ = envs.reset(seed=0)
        assert obs.shape == (2, *observation_shape(env_id, options))
        assert envs.single_observation_space.shape == observation_shape(env_id, options)
    entry = POPGYM_ENVS[env_id]
    assert observation_shape(env_id, PREVIOUS) == (entry.observation_size + entry.action_size,)


def test_previous_action_applies_to_popgym_only() -> None:
    assert check_options("popgym/RepeatFirstEasy", PREVIOUS) == PREVIOUS
    assert PREVIOUS.changed() == ("previous_action",)
    with pytest.raises(ValueError, match="option previous_action does not apply to CartPole-v1"):
        make_vec_env("CartPole-v1", 2, 0, PREVIOUS)
    with pytest.raises(ValueError, match="option frame_stack does not apply to popgym/RepeatFirstEasy"):
        check_options("popgym/RepeatFirstEasy", EnvOptions(frame_stack=1))
    with pytest.raises(ValueError, match="option previous_action must be a bool"):
        EnvOptions(previous_action=1)  # type: ignore[arg-type]


def test_importing_the_envs_and_the_spec_does_not_load_popgym() -> None:
    code = (
        "import sys, rlcore.spec, rlcore.envs; "
        "assert 'popgym' not in sys.modules, 'popgym'; assert 'mazelib' not in sys.modules, 'mazelib'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- flat encodings ---------------------------------------------------------------


def test_discrete_is_one_hot() -> None:
    space = spaces.Discrete(4)
    np.testing.assert_array_equal(encode(space, [2, 0]), [[0, 0, 1, 0], [1, 0, 0, 0]])
    np.testing.assert_array_equal(
        encode(spaces.Discrete(3, start=-1), np.array([-1, 1])), [[1, 0, 0], [0, 0, 1]]
    )
    assert flat_size(space) == 4 and encode(space, [3]).dtype == np.float32
    with pytest.raises(ValueError, match="outside"):
        encode(space, [4])


def test_multi_discrete_is_one_hots_side_by_side() -> None:
    space = spaces.MultiDiscrete([2, 3])
    out = encode(space, np.array([[1, 0], [0, 2]]))
    np.testing.assert_array_equal(out, [[0, 1, 1, 0, 0], [1, 0, 0, 0, 1]])
    assert flat_size(space) == 5 and out.dtype == np.float32
    with pytest.raises(ValueError, match="outside"):
        encode(space, np.array([[0, 3]]))


def test_tuple_is_its_parts_side_by_side() -> None:
    space = spaces.Tuple((spaces.Discrete(2), spaces.MultiDiscrete([2, 2]), spaces.Box(-1, 1, (2, 1))))
    out = encode(space, [(1, np.array([0, 1]), np.array([[0.5], [-0.25]]))])
    np.testing.assert_array_equal(out, [[0, 1, 1, 0, 0, 1, 0.5, -0.25]])
    assert flat_size(space) == 8
    box = flat_box(space)
    np.testing.assert_array_equal(box.low, [0, 0, 0, 0, 0, 0, -1, -1])
    np.testing.assert_array_equal(box.high, np.ones(8))


def test_box_is_flattened_float32() -> None:
    space = spaces.Box(-2, 2, (2, 2), dtype=np.float64)
    out = encode(space, np.arange(8.0).reshape(2, 2, 2))
    assert out.dtype == np.float32 and out.shape == (2, 4)
    np.testing.assert_array_equal(out[1], [4, 5, 6, 7])
    with pytest.raises(TypeError, match="no flat encoding"):
        flat_size(spaces.Text(5))


# --- stepping ---------------------------------------------------------------------


@pytest.mark.parametrize("env_id", POPGYM_IDS)
def test_contract_and_same_step_autoreset(env_id: str) -> None:
    num_envs, max_steps = 3, ENVS[env_id].max_episode_steps
    envs = make_vec_env(env_id, num_envs, seed=1)
    assert isinstance(envs, PopgymVecEnv)
    space = envs.single_action_space
    shape = envs.single_observation_space.shape
    obs, _ = envs.reset(seed=1)
    assert obs.shape == (num_envs, *shape) and obs.dtype == np.float32
    rng = np.random.default_rng(0)
    lengths = np.zeros(num_envs, dtype=int)
    episodes_ended = np.zeros(num_envs, dtype=int)
    fresh = make_popgym_env(env_id)
    for _ in range(max_steps + 2):
        obs, reward, terminated, truncated, info = envs.step(_actions(space, num_envs, rng))
        lengths += 1
        assert obs.shape == (num_envs, *shape) and obs.dtype == np.float32
        assert reward.shape == (num_envs,) and reward.dtype == np.float32
        assert terminated.dtype == np.bool_ and truncated.dtype == np.bool_
        final_obs, ended = info["final_obs"], info["_final_obs"]
        assert final_obs.shape == obs.shape and final_obs.dtype == np.float32
        np.testing.assert_array_equal(ended, terminated | truncated)
        assert not final_obs[~ended].any()
        assert np.all(lengths <= max_steps)
        for i in np.flatnonzero(ended):
            # Already the first observation of the next episode, from that episode's seed.
            first = fresh.reset(seed=envs._log.seeds[i])[0]
            np.testing.assert_array_equal(obs[i], encode(envs.inner_observation_space, [first])[0])
        episodes_ended += ended
        lengths[ended] = 0
    assert np.all(episodes_ended >= 1)


@pytest.mark.parametrize("env_id", POPGYM_IDS)
def test_same_seed_same_trajectory(env_id: str) -> None:
    rng = np.random.default_rng(1)
    first, second, other = (make_vec_env(env_id, 4, seed=s) for s in (7, 7, 8))
    space = first.single_action_space
    obs_first, _ = first.reset(seed=7)
    np.testing.assert_array_equal(obs_first, second.reset(seed=7)[0])
    other.reset(seed=8)
    actions = [_actions(space, 4, rng) for _ in range(30)]
    run = _run(first, actions)
    _assert_same_runs(run, _run(second, actions))
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(run, _run(other, actions), strict=True))
    # Env i's episodes depend on (seed, i), not on how many envs run beside it.
    small = make_vec_env(env_id, 2, seed=7)
    small_run = _run(small, [a[:2] for a in actions])
    for step, small_step in zip(run, small_run, strict=True):
        for x, y in zip(step, small_step, strict=True):
            np.testing.assert_array_equal(x[:2], y)


def test_actions_of_each_space_kind_step_and_bad_ones_are_refused() -> None:
    discrete = make_vec_env("popgym/RepeatPreviousEasy", 2, 0)
    discrete.step(np.array([0, 3]))
    for bad in (np.array([0, 4]), np.array([0.0, 1.0]), np.array([[0], [1]]), np.array([0, 1, 2])):
        with pytest.raises(ValueError, match="invalid actions"):
            discrete.step(bad)
    multi = make_vec_env("popgym/BattleshipEasy", 2, 0)
    multi.step(np.array([[0, 7], [3, 4]]))
    for bad in (np.array([0, 1]), np.array([[0, 8], [1, 1]]), np.array([[0.0, 1.0], [1.0, 1.0]])):
        with pytest.raises(ValueError, match="invalid actions"):
            multi.step(bad)
    box = make_vec_env("popgym/PositionOnlyPendulumEasy", 2, 0)
    box.step(np.array([[0.5], [-9.0]], dtype=np.float32))
    for bad in (np.array([0.5, 1.0]), np.array([[np.nan], [0.0]])):
        with pytest.raises(ValueError, match="invalid actions"):
            box.step(bad)


def test_out_of_bounds_box_actions_act_as_the_bound() -> None:
    clipped, bound = (make_vec_env("popgym/PositionOnlyPendulumEasy", 2, seed=3) for _ in range(2))
    for _ in range(20):
        _assert_same_runs(
            _run(clipped, [np.array([[9.0], [-5.0]], dtype=np.float32)]),
            _run(bound, [np.array([[2.0], [-2.0]], dtype=np.float32)]),
        )


def test_the_callers_global_generators_are_untouched() -> None:
    random.seed(5)
    np.random.seed(5)
    expected = (random.random(), np.random.random())
    random.seed(5)
    np.random.seed(5)
    envs = make_vec_env("popgym/LabyrinthExploreEasy", 2, seed=0)
    envs.step(np.array([0, 1]))
    assert (random.random(), np.random.random()) == expected


# --- previous action --------------------------------------------------------------


@pytest.mark.parametrize(
    "env_id", ["popgym/RepeatPreviousEasy", "popgym/MineSweeperEasy", "popgym/PositionOnlyPendulumHard"]
)
def test_previous_action_is_appended_and_zero_at_episode_starts(env_id: str) -> None:
    rng = np.random.default_rng(2)
    with_previous, plain = make_vec_env(env_id, 3, 4, PREVIOUS), make_vec_env(env_id, 3, 4)
    space = plain.single_action_space
    width = POPGYM_ENVS[env_id].action_size
    obs, _ = with_previous.reset(seed=4)
    np.testing.assert_array_equal(obs[:, :-width], plain.reset(seed=4)[0])
    assert not obs[:, -width:].any()
    ends = 0
    for _ in range(ENVS[env_id].max_episode_steps + 2):
        actions = _actions(space, 3, rng)
        obs, _, _, _, info = with_previous.step(actions)
        plain_obs, _, _, _, plain_info = plain.step(actions)
        np.testing.assert_array_equal(obs[:, :-width], plain_obs)
        np.testing.assert_array_equal(info["final_obs"][:, :-width], plain_info["final_obs"])
        ended = info["_final_obs"]
        if isinstance(space, spaces.Box):
            taken = np.clip(actions, space.low, space.high)
        else:
            taken = encode(space, actions)
        assert not obs[ended, -width:].any()
        np.testing.assert_array_equal(obs[~ended, -width:], taken[~ended])
        np.testing.assert_array_equal(info["final_obs"][ended, -width:], taken[ended])
        assert not info["final_obs"][~ended].any()
        ends += ended.sum()
    assert ends >= 3


# --- exact restore ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("env_id", "options"),
    [(env_id, EnvOptions()) for env_id in RESTORE_IDS] + [("popgym/HigherLowerEasy", PREVIOUS)],
)
def test_restore_is_exact(env_id: str, options: EnvOptions) -> None:
    rng = np.random.default_rng(6)
    envs = make_vec_env(env_id, 3, seed=6, options=options)
    space = envs.single_action_space
    # Past the longest episode: every env has ended one, some are deep into the next.
    ended = np.zeros(3, dtype=bool)
    for _ in range(ENVS[env_id].max_episode_steps + 7):
        ended |= envs.step(_actions(space, 3, rng))[4]["_final_obs"]
    assert ended.all()
    state = get_env_state(envs)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)

    actions = [_actions(space, 3, rng) for _ in range(40)]
    original = _run(envs, actions)
    state_after = get_env_state(envs)
    set_env_state(envs, state)
    assert get_env_state(envs) == state
    _assert_same_runs(original, _run(envs, actions))
    assert get_env_state(envs) == state_after
    resumed = make_vec_env(env_id, 3, seed=123, options=options)  # a restarted process
    set_env_state(resumed, loaded)
    assert get_env_state(resumed) == state
    _assert_same_runs(original, _run(resumed, actions))


def test_state_of_another_env_or_option_is_refused() -> None:
    state = get_env_state(make_vec_env("popgym/RepeatFirstEasy", 2, 0))
    for env_id, num_envs, options in [
        ("popgym/RepeatFirstMedium", 2, EnvOptions()),
        ("popgym/RepeatFirstEasy", 3, EnvOptions()),
        ("popgym/RepeatFirstEasy", 2, PREVIOUS),
    ]:
        with pytest.raises(ValueError, match="env state is for"):
            set_env_state(make_vec_env(env_id, num_envs, 0, options), state)
