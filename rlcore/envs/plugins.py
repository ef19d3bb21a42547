"""The operator's own environments: installed packages that declare an ``rlserve.envs`` entry point.

Users of the service still choose only ids from ``ENVS``; what joins that list is decided by
whoever installs the service. ``load_plugins()``, which the API, the workers and ``rlserve
train`` / ``eval`` call at start, loads every entry point of the group. Each must name an
``EnvPlugin``; one env is built to read its spaces and checked against the contract of
``rlcore.envs`` (a reset and a step), and the env joins ``ENVS`` with family ``"plugin"``
and no options. A broken plugin (import error, not an ``EnvPlugin``, an id already allowed,
spaces rlserve cannot train on, a step that breaks the contract) is logged with its entry
point and skipped: the service starts without it, and no built-in id is ever replaced.

A package declares its plugin in its ``pyproject.toml``::

    [project.entry-points."rlserve.envs"]
    majority = "rlserve_example_envs:MAJORITY"

``examples/rlserve-example-envs`` is one.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv, VectorWrapper
from gymnasium.vector.utils import batch_space
from gymnasium.wrappers import TimeLimit

from rlcore.envs.classic import _SyncArrayFinalObs
from rlcore.envs.registry import (
    ENVS,
    EnvInfo,
    EnvOptions,
    EnvStateNotSupported,
    _Stateful,
    add_env,
)
from rlcore.envs.spaces import encode, flat_box
from rlcore.envs.state import Array

__all__ = ["FAMILY", "GROUP", "EnvPlugin", "PluginFailure", "PluginReport", "load_plugins"]

GROUP = "rlserve.envs"
FAMILY = "plugin"
# What an id may look like: a name a URL, a file name and a log line carry as it is.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-/]{0,99}")
# The CNN's smallest input (rlcore.envs.memory_tasks.PIXELS_SIZE).
_MIN_FRAME = 36

log = logging.getLogger("rlserve.plugins")


@dataclass(frozen=True, kw_only=True)
class EnvPlugin:
    """What an ``rlserve.envs`` entry point names: one environment and how to build it.

    Give exactly one constructor:

    - ``make_env()``: one gymnasium ``Env``. rlserve runs ``num_envs`` of them in a
      ``SyncVectorEnv`` with same-step autoreset; ``reset(seed=s)`` seeds env ``i`` with
      ``s + i``, so the env must draw every random number from ``self.np_random`` (call
      ``super().reset(seed=seed)`` first). rlserve cannot read such an env's state: a
      resumed run keeps its weights and step count but starts fresh episodes.
    - ``make_vec_env(num_envs)``: a gymnasium ``VectorEnv`` that follows the contract of
      ``rlcore.envs`` itself (``metadata["autoreset_mode"]`` SAME_STEP,
      ``info["final_obs"]`` and ``info["_final_obs"]`` at every step, seeded by
      ``reset(seed=...)``). With ``get_state()`` / ``set_state(state)`` methods (plain
      Python types, see ``rlcore.envs.get_env_state``) a resumed run continues exactly.

    Spaces: observations a uint8 Box ``(C, H, W)`` of at least 36x36 (frames, trained with
    the CNN) or else, for ``make_env``, a Box (served flat, as float32), Discrete or
    MultiDiscrete (served one-hot), for ``make_vec_env`` a rank-1 float32 Box; actions
    Discrete, MultiDiscrete or a rank-1 Box with finite bounds. ``max_episode_steps`` is
    shown to users and bounds memory estimates; with ``make_env`` episodes are also
    truncated there (gymnasium's ``TimeLimit``). ``action_names`` name each discrete action
    (Discrete) or each action dimension.
    """

    id: str
    description: str
    needs_memory: bool
    make_env: Callable[[], gym.Env] | None = None
    make_vec_env: Callable[[int], VectorEnv] | None = None
    max_episode_steps: int | None = None
    solved_return: float | None = None
    action_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class PluginFailure:
    """An entry point that was skipped, and why."""

    entry_point: str  # "name = module:attr (distribution)"
    error: str


@dataclass(frozen=True)
class PluginReport:
    """What one ``load_plugins`` call did with the entry points it had not seen before."""

    loaded: tuple[str, ...]  # env ids put on the allow-list
    failed: tuple[PluginFailure, ...]


class PluginError(ValueError):
    """A plugin that cannot join the allow-list; the message says why."""


class _PluginSyncEnv(_SyncArrayFinalObs):
    """``num_envs`` single plugin envs under the contract: flat float32 (one-hot for discrete
    observations) or uint8 frames; no saveable state."""

    no_state_reason = "it is a plugin env of single gymnasium envs, whose state rlserve cannot read"

    def __init__(self, env: SyncVectorEnv, env_id: str) -> None:
        super().__init__(env, env_id)
        self.inner_observation_space = env.single_observation_space
        if not isinstance(self.inner_observation_space, (spaces.Box, spaces.Discrete, spaces.MultiDiscrete)):
            raise PluginError(
                f"observation space {self.inner_observation_space} is not a Box, Discrete or MultiDiscrete"
            )
        self.pixels = _is_frames(self.inner_observation_space)
        self.single_observation_space = (
            self.inner_observation_space if self.pixels else flat_box(env.single_observation_space)
        )
        self.observation_space = batch_space(self.single_observation_space, env.num_envs)

    def _observe(self, obs: Any) -> Array:
        if self.pixels:
            return np.asarray(obs, dtype=np.uint8)
        return encode(self.inner_observation_space, obs)


class _Stateless(VectorWrapper):
    """A plugin's own vector env without ``get_state`` / ``set_state``: saying so is all it adds."""

    def __init__(self, env: VectorEnv, env_id: str) -> None:
        super().__init__(env)
        self.env_id = env_id

    def get_state(self) -> dict[str, Any]:
        raise EnvStateNotSupported(
            f"{self.env_id} cannot save or restore its state (its vector env has no get_state / "
            "set_state); a resumed run must restart its episodes"
        )

    def set_state(self, state: dict[str, Any]) -> None:
        self.get_state()


def _is_frames(space: spaces.Space[Any]) -> bool:
    return isinstance(space, spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3


def _single_env(plugin: EnvPlugin) -> gym.Env:
    env = plugin.make_env()  # type: ignore[misc]
    if not isinstance(env, gym.Env):
        raise PluginError(f"make_env() returned {type(env).__name__}, not a gymnasium Env")
    return env if plugin.max_episode_steps is None else TimeLimit(env, plugin.max_episode_steps)


def _build(plugin: EnvPlugin, num_envs: int) -> VectorEnv:
    """``num_envs`` copies of the plugin's env under the contract (not yet reset)."""
    if plugin.make_env is not None:
        sync = SyncVectorEnv(
            [partial(_single_env, plugin)] * num_envs, autoreset_mode=AutoresetMode.SAME_STEP
        )
        return _PluginSyncEnv(sync, plugin.id)
    envs = plugin.make_vec_env(num_envs)  # type: ignore[misc]
    if not isinstance(envs, VectorEnv):
        raise PluginError(
            f"make_vec_env({num_envs}) returned {type(envs).__name__}, not a gymnasium VectorEnv"
        )
    if envs.num_envs != num_envs:
        raise PluginError(f"make_vec_env({num_envs}) returned {envs.num_envs} envs")
    if envs.metadata.get("autoreset_mode") != AutoresetMode.SAME_STEP:
        raise PluginError(
            "make_vec_env's env must declare metadata['autoreset_mode'] = AutoresetMode.SAME_STEP"
        )
    return envs if isinstance(envs, _Stateful) else _Stateless(envs, plugin.id)


def _check_plugin(plugin: Any) -> EnvPlugin:
    if not isinstance(plugin, EnvPlugin):
        raise PluginError(f"it names a {type(plugin).__name__}, not an rlcore.envs.plugins.EnvPlugin")
    if not isinstance(plugin.id, str) or not _ID.fullmatch(plugin.id):
        raise PluginError(
            f"id {plugin.id!r} is not 1-100 letters, digits or _.-/ (starting with a letter or digit)"
        )
    if (plugin.make_env is None) == (plugin.make_vec_env is None):
        raise PluginError(f"{plugin.id}: give exactly one of make_env and make_vec_env")
    if not (isinstance(plugin.description, str) and plugin.description.strip()):
        raise PluginError(f"{plugin.id}: description must be a non-empty string")
    steps = plugin.max_episode_steps
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise PluginError(f"{plugin.id}: max_episode_steps must be None or an int of at least 1")
    solved = plugin.solved_return
    if solved is not None and (
        isinstance(solved, bool) or not isinstance(solved, (int, float)) or not math.isfinite(solved)
    ):
        raise PluginError(f"{plugin.id}: solved_return must be None or a finite number")
    if not isinstance(plugin.needs_memory, bool):
        raise PluginError(f"{plugin.id}: needs_memory must be a bool")
    if not all(isinstance(name, str) and name for name in plugin.action_names):
        raise PluginError(f"{plugin.id}: action_names must be non-empty strings")
    return plugin


def _observation_fields(space: spaces.Space[Any]) -> dict[str, Any]:
    """EnvInfo's observation fields of the contract's (wrapped) single observation space."""
    if _is_frames(space):
        if min(space.shape[1:]) < _MIN_FRAME:
            raise PluginError(f"frames {space.shape} are smaller than the CNN's {_MIN_FRAME}x{_MIN_FRAME}")
        return {"observation_shape": tuple(space.shape), "pixels": True}
    if not (isinstance(space, spaces.Box) and space.dtype == np.float32 and len(space.shape) == 1):
        raise PluginError(
            f"observation space {space} is neither a rank-1 float32 Box nor uint8 (C, H, W) frames"
        )
    return {"observation_shape": tuple(space.shape)}


def _action_fields(space: spaces.Space[Any], names: tuple[str, ...]) -> dict[str, Any]:
    """EnvInfo's action fields (names numbered where the plugin gives none)."""

    def named(count: int, prefix: str) -> tuple[str, ...]:
        if not names:
            return tuple(f"{prefix} {i}" for i in range(count))
        if len(names) != count or len(set(names)) != count:
            raise PluginError(f"action_names {names!r} must be {count} distinct names for {space}")
        return tuple(names)

    if isinstance(space, spaces.Discrete) and int(space.start) == 0:
        return {"action_names": named(int(space.n), "action")}
    if isinstance(space, spaces.MultiDiscrete) and space.nvec.ndim == 1 and not space.start.any():
        nvec = tuple(int(n) for n in space.nvec)
        return {"action_kind": "multi_discrete", "action_nvec": nvec, "action_names": named(len(nvec), "dim")}
    if (
        isinstance(space, spaces.Box)
        and len(space.shape) == 1
        and np.all(np.isfinite(space.low))
        and np.all(np.isfinite(space.high))
    ):
        return {
            "action_kind": "gaussian",
            "action_shape": tuple(space.shape),
            "action_low": tuple(float(x) for x in space.low),
            "action_high": tuple(float(x) for x in space.high),
            "action_names": named(space.shape[0], "dim"),
        }
    raise PluginError(
        f"action space {space} is not Discrete, MultiDiscrete or a rank-1 Box with finite bounds "
        "(discrete ones starting at 0)"
    )


def _check_contract(envs: VectorEnv, info: EnvInfo) -> None:
    """A reset and a random step give the contract's arrays and step info."""
    shape = (envs.num_envs, *info.observation_shape)
    dtype = np.uint8 if info.pixels else np.float32
    obs, _ = envs.reset(seed=0)
    if np.shape(obs) != shape or np.asarray(obs).dtype != dtype:
        raise PluginError(
            f"reset gave observations {np.shape(obs)} {np.asarray(obs).dtype}, not {shape} {dtype}"
        )
    envs.action_space.seed(0)
    obs, reward, terminated, truncated, step_info = envs.step(envs.action_space.sample())
    if np.shape(obs) != shape or np.asarray(obs).dtype != dtype:
        raise PluginError(
            f"step gave observations {np.shape(obs)} {np.asarray(obs).dtype}, not {shape} {dtype}"
        )
    for name, value in (("reward", reward), ("terminated", terminated), ("truncated", truncated)):
        if np.shape(value) != (envs.num_envs,):
            raise PluginError(f"step gave {name} of shape {np.shape(value)}, not ({envs.num_envs},)")
    if np.shape(step_info.get("final_obs")) != shape or np.shape(step_info.get("_final_obs")) != shape[:1]:
        raise PluginError('step must return info["final_obs"] (like the observations) and info["_final_obs"]')


def _env_info(plugin: EnvPlugin) -> tuple[EnvInfo, bool]:
    """The allow-list entry of a plugin, read from two built envs, and whether they save state."""
    envs = _build(plugin, 2)
    try:
        max_steps = plugin.max_episode_steps
        if max_steps is None and plugin.make_env is not None:
            spec = envs.env.envs[0].spec
            max_steps = spec.max_episode_steps if spec else None
        info = EnvInfo(
            id=plugin.id,
            description=plugin.description,
            solved_return=plugin.solved_return,
            needs_memory=plugin.needs_memory,
            max_episode_steps=max_steps,
            family=FAMILY,
            **_observation_fields(envs.single_observation_space),
            **_action_fields(envs.single_action_space, tuple(plugin.action_names)),
        )
        _check_contract(envs, info)
        return info, not isinstance(envs, (_PluginSyncEnv, _Stateless))
    finally:
        envs.close()


def _builder(plugin: EnvPlugin) -> Callable[[EnvInfo, int, EnvOptions], VectorEnv]:
    return lambda info, num_envs, options: _build(plugin, num_envs)


def _describe(entry_point: EntryPoint) -> str:
    dist = entry_point.dist.name if entry_point.dist is not None else "unknown distribution"
    return f"{entry_point.name} = {entry_point.value} ({dist})"


_lock = threading.Lock()
_seen: set[tuple[str, str, str]] = set()  # (distribution, name, value) of each entry point handled
_added_by: dict[str, str] = {}  # env id -> the entry point that added it


def _add(entry_point: EntryPoint) -> str:
    plugin = _check_plugin(entry_point.load())
    if plugin.id in _added_by:
        raise PluginError(f"id {plugin.id} was already added by {_added_by[plugin.id]}")
    if plugin.id in ENVS:
        raise PluginError(
            f"id {plugin.id} is a built-in env ({ENVS[plugin.id].family}); a plugin cannot replace it"
        )
    info, stateful = _env_info(plugin)
    add_env(info, _builder(plugin), stateful=stateful)
    _added_by[plugin.id] = _describe(entry_point)
    return plugin.id


def load_plugins() -> PluginReport:
    """Put the env of every new ``rlserve.envs`` entry point on the allow-list; log and skip broken ones.

    Safe to call again (each process calls it at start; tests call it after adding entry
    points): an entry point already handled, loaded or not, is not tried again.
    """
    loaded: list[str] = []
    failed: list[PluginFailure] = []
    with _lock:
        for entry_point in entry_points(group=GROUP):
            key = (entry_point.dist.name if entry_point.dist else "", entry_point.name, entry_point.value)
            if key in _seen:
                continue
            _seen.add(key)
            where = _describe(entry_point)
            try:
                env_id = _add(entry_point)
            except Exception as error:  # a plugin's bug must not stop the service
                failed.append(PluginFailure(where, f"{type(error).__name__}: {error}"))
                log.error("environment plugin %s skipped: %s: %s", where, type(error).__name__, error)
                continue
            loaded.append(env_id)
            log.info("environment plugin %s added %s", where, env_id)
    return PluginReport(tuple(loaded), tuple(failed))
