"""Allowed environments and the vectorised environment factory.

Only the ids in ``ENVS`` can be built; each maps to a fixed builder in this module, so a
job spec can never name arbitrary code to import.

Every env from ``make_vec_env`` follows one contract, which the rollout code relies on:

- observations: float32 array of shape ``(num_envs, *single_observation_space.shape)``;
  actions: int array of shape ``(num_envs,)``; rewards: float32 array of shape
  ``(num_envs,)``; terminated / truncated: bool arrays of shape ``(num_envs,)``.
- SAME-STEP autoreset: when env ``i`` ends at a step, ``obs[i]`` returned by that step is
  already the first observation of its next episode. The last observation of the ended
  episode is row ``i`` of ``info["final_obs"]`` (float32, same shape as ``obs``), valid
  where the bool mask ``info["_final_obs"]`` is True. ``step`` always returns both keys.
- Seeded by the factory: ``reset(seed=seed)`` (or ``reset()`` right after the factory)
  and the same actions give the same trajectory, including the flicker noise.

``get_env_state`` / ``set_env_state`` save and restore everything that decides future
steps, as plain Python types, so a trainer can resume a run bit-for-bit. The last
observation handed to the caller is not part of it: the caller keeps its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv, VectorWrapper
from gymnasium.vector.utils import batch_space
from gymnasium.wrappers import TimeLimit

__all__ = [
    "ENVS",
    "CueRecallVectorEnv",
    "EnvInfo",
    "EnvStateNotSupported",
    "get_env_state",
    "make_vec_env",
    "set_env_state",
    "supports_state",
]

CUE_RECALL_DELAY = 8
FLICKER_PROB = 0.5

Array = np.ndarray
StepResult = tuple[Array, Array, Array, Array, dict[str, Any]]


@dataclass(frozen=True)
class EnvInfo:
    """What the service tells a user about an allowed environment."""

    id: str
    description: str
    solved_return: float | None
    needs_memory: bool
    max_episode_steps: int | None = None


ENVS: dict[str, EnvInfo] = {
    info.id: info
    for info in [
        EnvInfo("CartPole-v0", "Balance a pole on a cart (200 steps).", 195.0, False, 200),
        EnvInfo("CartPole-v1", "Balance a pole on a cart (500 steps).", 475.0, False, 500),
        EnvInfo(
            "CartPoleMasked-v1",
            "CartPole-v1 showing only cart position and pole angle; velocities are hidden.",
            475.0,
            True,
            500,
        ),
        EnvInfo(
            "CartPoleFlicker-v1",
            "CartPole-v1 whose observation is all zeros with probability 0.5 at each step.",
            475.0,
            True,
            500,
        ),
        EnvInfo(
            "CueRecall-v0",
            f"Name the cue shown at the first step after {CUE_RECALL_DELAY} blank steps "
            "(+1 right, -1 wrong).",
            0.9,
            True,
            CUE_RECALL_DELAY + 2,
        ),
        EnvInfo("Acrobot-v1", "Swing a two-link arm above a line.", -100.0, False, 500),
        EnvInfo("MountainCar-v0", "Drive an underpowered car up a hill.", -110.0, False, 200),
        EnvInfo("LunarLander-v3", "Land a lander on the pad (Box2D).", 200.0, False, 1000),
    ]
}

# Box2D worlds hold their state in C++ objects that cannot be read out and rebuilt.
_NO_STATE_SUPPORT = frozenset({"LunarLander-v3"})


class EnvStateNotSupported(NotImplementedError):
    """The environment's state cannot be saved and restored exactly."""


def _check_env_id(env_id: str) -> EnvInfo:
    if env_id not in ENVS:
        allowed = ", ".join(sorted(ENVS))
        raise ValueError(f"unknown environment {env_id!r}; allowed: {allowed}")
    return ENVS[env_id]


def supports_state(env_id: str) -> bool:
    """Whether ``get_env_state`` / ``set_env_state`` work for this allowed env id."""
    _check_env_id(env_id)
    return env_id not in _NO_STATE_SUPPORT


# --- plain-type encoding of state --------------------------------------------------
# torch.load(weights_only=True) refuses numpy arrays, so arrays travel as nested lists
# with their dtype and shape; float64 -> Python float -> float64 is exact.


def _encode_array(array: Any) -> dict[str, Any]:
    array = np.asarray(array)
    return {"dtype": str(array.dtype), "shape": list(array.shape), "data": array.tolist()}


def _decode_array(encoded: dict[str, Any]) -> Array:
    return np.asarray(encoded["data"], dtype=encoded["dtype"]).reshape(encoded["shape"])


def _rng_state(rng: np.random.Generator) -> dict[str, Any]:
    return rng.bit_generator.state


def _set_rng_state(rng: np.random.Generator, state: dict[str, Any]) -> None:
    rng.bit_generator.state = state


def _check_state(state: dict[str, Any], kind: str, num_envs: int) -> None:
    if state.get("kind") != kind or state.get("num_envs") != num_envs:
        raise ValueError(
            f"env state is for {state.get('kind')!r} with {state.get('num_envs')} envs; "
            f"this env is {kind!r} with {num_envs} envs"
        )


@runtime_checkable
class _Stateful(Protocol):
    def get_state(self) -> dict[str, Any]: ...

    def set_state(self, state: dict[str, Any]) -> None: ...


def _final_obs_info(last_obs: Array, ended: Array) -> dict[str, Array]:
    """The step-info entries for the contract: last observations where ``ended``."""
    final_obs = np.zeros_like(last_obs, dtype=np.float32)
    final_obs[ended] = last_obs[ended]
    return {"final_obs": final_obs, "_final_obs": np.array(ended, dtype=np.bool_)}


# --- CartPole ---------------------------------------------------------------------


class _SameStepCartPole(CartPoleVectorEnv):
    """Gymnasium's numpy CartPole with same-step instead of next-step autoreset."""

    metadata: ClassVar[dict[str, Any]] = {
        **CartPoleVectorEnv.metadata,
        "autoreset_mode": AutoresetMode.SAME_STEP,
    }

    def step(self, actions: Array) -> StepResult:
        obs, reward, terminated, truncated, _ = super().step(actions)
        # The parent would spend the next step resetting these envs; we reset them now.
        self.prev_done[:] = False
        ended = terminated | truncated
        info = _final_obs_info(obs, ended)
        self.state[:, ended] = self.np_random.uniform(self.low, self.high, size=(4, ended.sum()))
        self.steps[ended] = 0
        return self.state.T.astype(np.float32), reward, terminated, truncated, info

    def _kind(self) -> str:
        return f"CartPole(max_episode_steps={self.max_episode_steps})"

    def get_state(self) -> dict[str, Any]:
        return {
            "kind": self._kind(),
            "num_envs": self.num_envs,
            "physics": _encode_array(self.state),
            "steps": _encode_array(self.steps),
            "rng": _rng_state(self.np_random),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        _check_state(state, self._kind(), self.num_envs)
        self.state = _decode_array(state["physics"])
        self.steps = _decode_array(state["steps"])
        self.prev_done[:] = False
        _set_rng_state(self.np_random, state["rng"])


# --- CueRecall --------------------------------------------------------------------


class CueRecallVectorEnv(VectorEnv):
    """A pure memory task: recall a cue seen ``delay + 1`` steps earlier.

    Observation ``[cue0, cue1, query]``: at the first step one of the two cue entries is
    1, then ``delay`` steps are all zeros, then ``query`` is 1 and the action taken there
    is scored +1 if it names the cue and -1 otherwise; every other reward is 0. Episodes
    last ``delay + 2`` steps and end by termination. Without memory the expected return
    is 0.
    """

    metadata: ClassVar[dict[str, Any]] = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, num_envs: int, delay: int = CUE_RECALL_DELAY) -> None:
        self.num_envs = num_envs
        self.delay = delay
        self.single_observation_space = spaces.Box(0.0, 1.0, shape=(3,), dtype=np.float32)
        self.single_action_space = spaces.Discrete(2)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._cues = np.zeros(num_envs, dtype=np.int64)
        self._t = np.zeros(num_envs, dtype=np.int64)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Array, dict[str, Any]]:
        super().reset(seed=seed)
        self._cues = self.np_random.integers(0, 2, size=self.num_envs)
        self._t = np.zeros(self.num_envs, dtype=np.int64)
        return self._observe(), {}

    def step(self, actions: Array) -> StepResult:
        actions = np.asarray(actions)
        if not self.action_space.contains(actions):
            raise ValueError(f"invalid actions {actions!r} for {self.action_space}")
        at_query = self._t == self.delay + 1
        score = np.where(actions == self._cues, 1.0, -1.0)
        reward = np.where(at_query, score, 0.0).astype(np.float32)
        self._t += 1
        terminated = at_query
        info = _final_obs_info(self._observe(), terminated)
        self._cues[terminated] = self.np_random.integers(0, 2, size=terminated.sum())
        self._t[terminated] = 0
        truncated = np.zeros(self.num_envs, dtype=np.bool_)
        return self._observe(), reward, terminated, truncated, info

    def _observe(self) -> Array:
        obs = np.zeros((self.num_envs, 3), dtype=np.float32)
        first = np.flatnonzero(self._t == 0)
        obs[first, self._cues[first]] = 1.0
        obs[self._t == self.delay + 1, 2] = 1.0
        return obs

    def _kind(self) -> str:
        return f"CueRecall(delay={self.delay})"

    def get_state(self) -> dict[str, Any]:
        return {
            "kind": self._kind(),
            "num_envs": self.num_envs,
            "cues": _encode_array(self._cues),
            "t": _encode_array(self._t),
            "rng": _rng_state(self.np_random),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        _check_state(state, self._kind(), self.num_envs)
        self._cues = _decode_array(state["cues"])
        self._t = _decode_array(state["t"])
        _set_rng_state(self.np_random, state["rng"])


# --- Gymnasium SyncVectorEnv ------------------------------------------------------


def _time_limit(env: gym.Env) -> TimeLimit:
    while isinstance(env, gym.Wrapper):
        if isinstance(env, TimeLimit):
            return env
        env = env.env
    raise TypeError(f"{env} has no TimeLimit wrapper")


class _SyncArrayFinalObs(VectorWrapper):
    """Puts a SAME_STEP ``SyncVectorEnv`` under this module's array contract.

    SyncVectorEnv reports final observations as an object array, only when some env
    ended; this wrapper always returns a float32 array and its mask.
    """

    def __init__(self, env: SyncVectorEnv, env_id: str) -> None:
        super().__init__(env)
        self.env_id = env_id

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Array, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        return np.asarray(obs, dtype=np.float32), info

    def step(self, actions: Array) -> StepResult:
        obs, reward, terminated, truncated, info = self.env.step(actions)
        obs = np.asarray(obs, dtype=np.float32)
        ended = info.get("_final_obs", np.zeros(self.num_envs, dtype=np.bool_))
        last_obs = np.zeros_like(obs)
        for i in np.flatnonzero(ended):
            last_obs[i] = info["final_obs"][i]
        info = {**info, **_final_obs_info(last_obs, ended)}
        return obs, reward.astype(np.float32), terminated, truncated, info

    def _sub_envs(self) -> list[gym.Env]:
        if not supports_state(self.env_id):
            raise EnvStateNotSupported(
                f"{self.env_id} cannot save or restore its state (its Box2D world is not "
                "serialisable); a resumed run must restart its episodes"
            )
        return list(self.env.envs)

    # Classic-control envs keep all their dynamics in `unwrapped.state`; the rest of what
    # decides future steps is the env's RNG and its TimeLimit counter.
    def get_state(self) -> dict[str, Any]:
        return {
            "kind": self.env_id,
            "num_envs": self.num_envs,
            "envs": [
                {
                    "physics": _encode_array(env.unwrapped.state),
                    "rng": _rng_state(env.unwrapped.np_random),
                    "elapsed_steps": _time_limit(env)._elapsed_steps,
                }
                for env in self._sub_envs()
            ],
        }

    def set_state(self, state: dict[str, Any]) -> None:
        sub_envs = self._sub_envs()
        _check_state(state, self.env_id, self.num_envs)
        # A reset first puts every wrapper (order enforcing, autoreset flags) in its
        # ready-to-step state; everything it randomised is overwritten below.
        self.env.reset()
        for env, sub_state in zip(sub_envs, state["envs"], strict=True):
            env.unwrapped.state = _decode_array(sub_state["physics"])
            _set_rng_state(env.unwrapped.np_random, sub_state["rng"])
            _time_limit(env)._elapsed_steps = sub_state["elapsed_steps"]


# --- observation transforms (POMDP variants) --------------------------------------


class _ObservationTransform(VectorWrapper):
    """Applies ``transform`` to every observation, including ``info["final_obs"]``.

    Gymnasium's VectorObservationWrapper refuses SAME_STEP autoreset because it would
    leave ``final_obs`` untransformed.
    """

    def __init__(self, env: VectorEnv, single_observation_space: spaces.Box) -> None:
        super().__init__(env)
        self.single_observation_space = single_observation_space
        self.observation_space = batch_space(single_observation_space, env.num_envs)

    def transform(self, obs: Array) -> Array:
        """Map a batch of inner observations to a batch of outer observations."""
        raise NotImplementedError

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Array, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        return self.transform(obs), info

    def step(self, actions: Array) -> StepResult:
        obs, reward, terminated, truncated, info = self.env.step(actions)
        info = {**info, "final_obs": self.transform(info["final_obs"])}
        return self.transform(obs), reward, terminated, truncated, info

    def get_state(self) -> dict[str, Any]:
        return self.env.get_state()

    def set_state(self, state: dict[str, Any]) -> None:
        self.env.set_state(state)


class _MaskObservation(_ObservationTransform):
    """Keeps only the observation entries at ``indices``."""

    def __init__(self, env: VectorEnv, indices: Sequence[int]) -> None:
        self.indices = list(indices)
        inner = env.single_observation_space
        space = spaces.Box(inner.low[self.indices], inner.high[self.indices], dtype=np.float32)
        super().__init__(env, space)

    def transform(self, obs: Array) -> Array:
        return obs[:, self.indices]


class _FlickerObservation(_ObservationTransform):
    """Replaces each env's whole observation by zeros with probability ``prob``."""

    # Mixed into the seed so the flicker stream differs from the physics stream that
    # the inner env derives from the same seed.
    _SEED_SALT = 0xF11C

    def __init__(self, env: VectorEnv, prob: float) -> None:
        super().__init__(env, env.single_observation_space)
        self.prob = prob
        self._rng = np.random.default_rng()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Array, dict[str, Any]]:
        if seed is not None:
            self._rng = np.random.default_rng([self._SEED_SALT, seed])
        return super().reset(seed=seed, options=options)

    def transform(self, obs: Array) -> Array:
        # One draw per env on every call, blank or not, so the stream only depends on
        # the number of calls.
        hidden = self._rng.random(len(obs)) < self.prob
        return np.where(hidden[:, None], np.float32(0.0), obs)

    def get_state(self) -> dict[str, Any]:
        return {
            "kind": "Flicker",
            "num_envs": self.num_envs,
            "rng": _rng_state(self._rng),
            "inner": self.env.get_state(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        _check_state(state, "Flicker", self.num_envs)
        self.env.set_state(state["inner"])
        _set_rng_state(self._rng, state["rng"])


# --- factory ----------------------------------------------------------------------


def _cartpole(info: EnvInfo, num_envs: int) -> VectorEnv:
    return _SameStepCartPole(num_envs=num_envs, max_episode_steps=info.max_episode_steps)


def _sync(info: EnvInfo, num_envs: int) -> VectorEnv:
    envs = gym.make_vec(
        info.id,
        num_envs=num_envs,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
    )
    return _SyncArrayFinalObs(envs, info.id)


_BUILDERS: dict[str, Callable[[EnvInfo, int], VectorEnv]] = {
    "CartPole-v0": _cartpole,
    "CartPole-v1": _cartpole,
    # Cart position and pole angle.
    "CartPoleMasked-v1": lambda info, n: _MaskObservation(_cartpole(info, n), indices=(0, 2)),
    "CartPoleFlicker-v1": lambda info, n: _FlickerObservation(_cartpole(info, n), FLICKER_PROB),
    "CueRecall-v0": lambda info, n: CueRecallVectorEnv(n),
    "Acrobot-v1": _sync,
    "MountainCar-v0": _sync,
    "LunarLander-v3": _sync,
}


def make_vec_env(env_id: str, num_envs: int, seed: int) -> VectorEnv:
    """Build ``num_envs`` copies of an allowed environment, reset with ``seed``.

    Raises ``ValueError`` for an id outside ``ENVS`` (the message lists the allowed ids)
    and for ``num_envs < 1``. See the module docstring for the step contract.
    """
    info = _check_env_id(env_id)
    if num_envs < 1:
        raise ValueError(f"num_envs must be at least 1, got {num_envs}")
    envs = _BUILDERS[env_id](info, num_envs)
    envs.reset(seed=seed)
    return envs


def _stateful(envs: VectorEnv) -> _Stateful:
    if not isinstance(envs, _Stateful):
        raise TypeError(f"{envs} was not built by make_vec_env")
    return envs


def get_env_state(envs: VectorEnv) -> dict[str, Any]:
    """Everything that decides the future of ``envs``, as plain Python types.

    Includes physics state, step counters and every RNG's bit-generator state; safe to
    store with ``torch.save`` and load with ``torch.load(weights_only=True)`` or JSON.
    Raises ``EnvStateNotSupported`` where ``supports_state`` is False.
    """
    return _stateful(envs).get_state()


def set_env_state(envs: VectorEnv, state: dict[str, Any]) -> None:
    """Restore a ``get_env_state`` result into envs made for the same id and ``num_envs``.

    The next ``step`` then returns exactly what it would have returned after the save.
    Raises ``ValueError`` if the state belongs to another env id or size.
    """
    _stateful(envs).set_state(state)
