"""POPGym (Morad et al. 2023): partially observable tasks that need memory, under the package contract.

Each env is built from its popgym class directly (``registry.POPGYM_ENVS`` names the fixed
module and class; popgym's ``gym.make`` ids are not used), ``num_envs`` copies stepped in
turn with SAME-STEP autoreset. Observations are flattened to float32 vectors by
``rlcore.envs.spaces`` (one-hot for discrete parts). Actions are the popgym env's own:
Discrete (int ``(N,)``), MultiDiscrete (int ``(N, k)``) or Box (float ``(N, d)``, clipped
to the space's bounds before stepping).

popgym envs keep arbitrary Python state (decks, mazes), so save/restore is by replay
(``rlcore.envs.replay``): every episode, autoresets included, starts from a seed drawn
from the env's own generator, and a restore resets each env with its current episode's
seed and replays that episode's actions. Seeding every reset also matters because the
labyrinths draw their mazes from the global ``random`` / ``np.random`` generators, which
popgym reseeds only at a seeded reset; this module puts their global state back after
each reset so that the caller's global generators are untouched.

popgym itself is imported only when an env is built: the registry, ``rlcore.spec`` and the
API never load it.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv, VectorWrapper
from gymnasium.vector.utils import batch_space

from rlcore.envs.hidden import (
    ANGULAR_VELOCITY,
    CART_POSITION,
    CART_VELOCITY,
    POLE_ANGLE,
    POLE_ANGULAR_VELOCITY,
    HiddenValues,
    HiddenVariable,
)
from rlcore.envs.registry import POPGYM_ENVS, POPGYM_LEVELS, EnvInfo, EnvOptions, register_builders
from rlcore.envs.replay import EpisodeLog
from rlcore.envs.spaces import encode, flat_box
from rlcore.envs.state import Array, StepResult, _check_state, _final_obs_info

__all__ = ["PopgymVecEnv", "PreviousAction", "make_popgym_env"]


def make_popgym_env(env_id: str) -> gym.Env:
    """One popgym env of an allowed id, from the fixed module and class the registry names."""
    entry = POPGYM_ENVS[env_id]
    module = importlib.import_module(f"popgym.envs.{entry.module}")
    return getattr(module, entry.class_name)()


def _seeded_reset(env: gym.Env, seed: int) -> Any:
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        obs, _ = env.reset(seed=seed)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return obs


@dataclass(frozen=True)
class _Hidden:
    """A hidden variable of a popgym task, read from the popgym env's own ``get_state()``."""

    variable: HiddenVariable
    read: Callable[[Any], Any]
    shown_at_start: bool = False  # shown by an episode's first observation only; else never


_CARTPOLE_VELOCITIES = (_Hidden(CART_VELOCITY, itemgetter(1)), _Hidden(POLE_ANGULAR_VELOCITY, itemgetter(3)))
# The tasks whose hidden state is a few named variables; the others (decks, boards,
# mazes) hide too much, or too entangled, to name here.
_POPGYM_HIDDEN: dict[str, tuple[_Hidden, ...]] = {
    "PositionOnlyCartPole": _CARTPOLE_VELOCITIES,
    "NoisyPositionOnlyCartPole": _CARTPOLE_VELOCITIES,
    "VelocityOnlyCartPole": (_Hidden(CART_POSITION, itemgetter(0)), _Hidden(POLE_ANGLE, itemgetter(2))),
    # popgym's pendulum state is [cos, sin, angular velocity].
    "PositionOnlyPendulum": (_Hidden(ANGULAR_VELOCITY, itemgetter(2)),),
    "NoisyPositionOnlyPendulum": (_Hidden(ANGULAR_VELOCITY, itemgetter(2)),),
    "RepeatFirst": (
        _Hidden(
            HiddenVariable("first_suit", "discrete", 4, "the suit of the first card, to name at every step"),
            itemgetter(0),
            shown_at_start=True,
        ),
    ),
}


def _popgym_hidden(env_id: str) -> tuple[_Hidden, ...]:
    name = POPGYM_ENVS[env_id].class_name
    task = next(name.removesuffix(level) for level in POPGYM_LEVELS if name.endswith(level))
    return _POPGYM_HIDDEN.get(task, ())


class PopgymVecEnv(VectorEnv):
    """``num_envs`` copies of one popgym env with flat float32 observations and exact save/restore."""

    metadata: ClassVar[dict[str, Any]] = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, env_id: str, num_envs: int) -> None:
        self.env_id = env_id
        self.num_envs = num_envs
        self.envs = [make_popgym_env(env_id) for _ in range(num_envs)]
        self.inner_observation_space: spaces.Space[Any] = self.envs[0].observation_space
        self.single_observation_space = flat_box(self.inner_observation_space)
        self.single_action_space = self.envs[0].action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        action_dtype = np.float32 if isinstance(self.single_action_space, spaces.Box) else np.int64
        self._log = EpisodeLog(num_envs, self.single_action_space.shape, action_dtype)
        self._ready = False

    def _start_episode(self, env: int) -> Any:
        return _seeded_reset(self.envs[env], self._log.start(env))

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Array, dict[str, Any]]:
        """Start new episodes in every env; with ``seed``, env i's episodes follow child i of it."""
        if options:
            raise ValueError(f"reset options are not supported, got {sorted(options)}")
        if seed is not None:
            self._log.seed(seed)
        obs = [self._start_episode(i) for i in range(self.num_envs)]
        self._ready = True
        return encode(self.inner_observation_space, obs), {}

    def check_actions(self, actions: Array) -> Array:
        """``actions`` as the envs take them: int64 for discrete spaces, float32 within the
        bounds for Box. Raises ``ValueError`` for a batch that does not fit the space."""
        actions = np.asarray(actions)
        space = self.single_action_space
        shape = (self.num_envs, *space.shape)
        if isinstance(space, spaces.Box):
            if actions.shape != shape or actions.dtype.kind not in "fiu" or not np.all(np.isfinite(actions)):
                raise ValueError(f"invalid actions {actions!r} for {self.action_space}")
            return np.clip(actions, space.low, space.high).astype(np.float32)
        if (
            actions.shape != shape
            or actions.dtype.kind not in "iu"
            or not self.action_space.contains(actions)
        ):
            raise ValueError(f"invalid actions {actions!r} for {self.action_space}")
        return actions.astype(np.int64)

    def _env_action(self, action: Array) -> Any:
        return int(action) if isinstance(self.single_action_space, spaces.Discrete) else action.copy()

    def step(self, actions: Array) -> StepResult:
        actions = self.check_actions(actions)
        if not self._ready:
            raise RuntimeError("reset the env before stepping it")
        observations: list[Any] = []
        finals: dict[int, Any] = {}
        reward = np.zeros(self.num_envs, dtype=np.float32)
        terminated = np.zeros(self.num_envs, dtype=np.bool_)
        truncated = np.zeros(self.num_envs, dtype=np.bool_)
        for i, env in enumerate(self.envs):
            obs, reward[i], terminated[i], truncated[i], _ = env.step(self._env_action(actions[i]))
            self._log.record(i, actions[i])
            if terminated[i] or truncated[i]:
                finals[i] = obs
                obs = self._start_episode(i)
            observations.append(obs)
        obs = encode(self.inner_observation_space, observations)
        last_obs = obs.copy()
        if finals:
            last_obs[list(finals)] = encode(self.inner_observation_space, list(finals.values()))
        return obs, reward, terminated, truncated, _final_obs_info(last_obs, terminated | truncated)

    # --- hidden variables -----------------------------------------------------------

    def hidden_variables(self) -> tuple[HiddenVariable, ...]:
        return tuple(hidden.variable for hidden in _popgym_hidden(self.env_id))

    def hidden_values(self) -> dict[str, HiddenValues]:
        if not self._ready:
            raise RuntimeError("reset the env before reading its hidden variables")
        states = [env.get_state() for env in self.envs]  # popgym's oracle state, per env
        at_start = np.array([not actions for actions in self._log.actions], dtype=np.bool_)
        out = {}
        for hidden in _popgym_hidden(self.env_id):
            discrete = hidden.variable.kind == "discrete"
            values = np.array([hidden.read(state) for state in states], np.int64 if discrete else np.float64)
            visible = at_start if hidden.shown_at_start else np.zeros(self.num_envs, dtype=np.bool_)
            out[hidden.variable.name] = HiddenValues(values, visible.copy())
        return out

    # --- state --------------------------------------------------------------------

    def _kind(self) -> str:
        return f"POPGym({self.env_id})"

    def get_state(self) -> dict[str, Any]:
        if not self._ready:
            raise RuntimeError("reset the env before saving its state")
        return {"kind": self._kind(), "num_envs": self.num_envs, "episodes": self._log.get_state()}

    def set_state(self, state: dict[str, Any]) -> None:
        _check_state(state, self._kind(), self.num_envs)
        self._log.set_state(state["episodes"])
        # Each env on its own: reset with its episode's seed, then its actions again.
        for env, seed, actions in zip(self.envs, self._log.seeds, self._log.actions, strict=True):
            _seeded_reset(env, seed)
            for action in actions:
                env.step(self._env_action(action))
        self._ready = True


class PreviousAction(VectorWrapper):
    """POPGym's previous-action protocol: each observation ends with the action that led to
    it (one-hot for discrete parts, as taken for Box), zeros at an episode's first step."""

    def __init__(self, env: PopgymVecEnv) -> None:
        super().__init__(env)
        self.inner: PopgymVecEnv = env
        obs_box, action_box = env.single_observation_space, flat_box(env.single_action_space)
        self.action_width = action_box.shape[0]
        self.single_observation_space = spaces.Box(
            np.concatenate([obs_box.low, action_box.low]),
            np.concatenate([obs_box.high, action_box.high]),
            dtype=np.float32,
        )
        self.observation_space = batch_space(self.single_observation_space, env.num_envs)

    def _with(self, obs: Array, previous: Array) -> Array:
        return np.concatenate([obs, previous], axis=1)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Array, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        return self._with(obs, np.zeros((self.num_envs, self.action_width), np.float32)), info

    def step(self, actions: Array) -> StepResult:
        previous = encode(self.inner.single_action_space, self.inner.check_actions(actions))
        obs, reward, terminated, truncated, info = self.env.step(actions)
        ended = info["_final_obs"]
        # A row that ended already shows the next episode's first observation.
        obs = self._with(obs, np.where(ended[:, None], np.float32(0), previous))
        final_obs = self._with(info["final_obs"], previous)
        return obs, reward, terminated, truncated, {**info, **_final_obs_info(final_obs, ended)}

    def hidden_variables(self) -> tuple[HiddenVariable, ...]:
        return self.inner.hidden_variables()

    def hidden_values(self) -> dict[str, HiddenValues]:
        return self.inner.hidden_values()

    def get_state(self) -> dict[str, Any]:
        return {"kind": "PreviousAction", "num_envs": self.num_envs, "inner": self.inner.get_state()}

    def set_state(self, state: dict[str, Any]) -> None:
        _check_state(state, "PreviousAction", self.num_envs)
        self.inner.set_state(state["inner"])


def _popgym(info: EnvInfo, num_envs: int, options: EnvOptions) -> VectorEnv:
    envs = PopgymVecEnv(info.id, num_envs)
    return PreviousAction(envs) if options.previous_action else envs


BUILDERS = dict.fromkeys(POPGYM_ENVS, _popgym)
register_builders("popgym", BUILDERS)
