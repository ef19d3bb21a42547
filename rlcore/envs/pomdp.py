"""Observation transforms that turn an env into a partially observed one (POMDP variants)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import VectorEnv, VectorWrapper
from gymnasium.vector.utils import batch_space

from rlcore.envs.state import Array, StepResult, _check_state, _rng_state, _set_rng_state


class ObservationTransform(VectorWrapper):
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


class MaskObservation(ObservationTransform):
    """Keeps only the observation entries at ``indices``."""

    def __init__(self, env: VectorEnv, indices: Sequence[int]) -> None:
        self.indices = list(indices)
        inner = env.single_observation_space
        space = spaces.Box(inner.low[self.indices], inner.high[self.indices], dtype=np.float32)
        super().__init__(env, space)

    def transform(self, obs: Array) -> Array:
        return obs[:, self.indices]


class FlickerObservation(ObservationTransform):
    """Replaces each env's whole observation (a vector, or a whole frame stack) by zeros
    with probability ``prob``; keeps the observation dtype."""

    # Mixed into the seed so the flicker stream differs from the streams that the inner
    # env derives from the same seed.
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
        return np.where(hidden.reshape(-1, *[1] * (obs.ndim - 1)), obs.dtype.type(0), obs)

    def get_state(self) -> dict[str, Any]:
        return {
            "kind": "Flicker",
            "num_envs": self.num_envs,
            "prob": self.prob,
            "rng": _rng_state(self._rng),
            "inner": self.env.get_state(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        _check_state(state, "Flicker", self.num_envs)
        # States saved before "prob" was recorded all come from CartPoleFlicker-v1.
        if state.get("prob", self.prob) != self.prob:
            raise ValueError(f"env state is for flicker {state['prob']}; this env flickers {self.prob}")
        self.env.set_state(state["inner"])
        _set_rng_state(self._rng, state["rng"])
