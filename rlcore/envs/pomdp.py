"""Observation transforms that turn an env into a partially observed one (POMDP variants)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import VectorEnv, VectorWrapper
from gymnasium.vector.utils import batch_space

from rlcore.envs.hidden import HiddenValues, HiddenVariable, hidden_values, hidden_variables
from rlcore.envs.state import Array, StepResult, _check_state, _rng_state, _set_rng_state


class ObservationTransform(VectorWrapper):
    """Applies ``transform`` to every observation, including ``info["final_obs"]``.

    Gymnasium's VectorObservationWrapper refuses SAME_STEP autoreset because it would
    leave ``final_obs`` untransformed.

    ``hidden`` names the entries of the inner observation (by index) that the transform
    hides, as hidden variables (`rlcore.envs.hidden`); what the inner env hides is passed on.
    """

    def __init__(
        self,
        env: VectorEnv,
        single_observation_space: spaces.Box,
        hidden: Mapping[int, HiddenVariable] | None = None,
    ) -> None:
        super().__init__(env)
        self.single_observation_space = single_observation_space
        self.observation_space = batch_space(single_observation_space, env.num_envs)
        self.hidden = dict(hidden or {})
        self._inner_obs: Array | None = None

    def transform(self, obs: Array) -> Array:
        """Map a batch of inner observations to a batch of outer observations."""
        raise NotImplementedError

    def shown(self) -> Array:
        """Per env, whether the last observation shows anything at all (bool, (num_envs,))."""
        return np.ones(self.num_envs, dtype=np.bool_)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Array, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._inner_obs = obs
        return self.transform(obs), info

    def step(self, actions: Array) -> StepResult:
        obs, reward, terminated, truncated, info = self.env.step(actions)
        info = {**info, "final_obs": self.transform(info["final_obs"])}
        # The current observation is transformed last, so what a transform keeps of its
        # last call (the flicker's blanks) is about the observation returned.
        self._inner_obs = obs
        return self.transform(obs), reward, terminated, truncated, info

    def hidden_variables(self) -> tuple[HiddenVariable, ...]:
        return (*hidden_variables(self.env), *self.hidden.values())

    def hidden_values(self) -> dict[str, HiddenValues]:
        if self._inner_obs is None:
            raise RuntimeError("reset the env before reading its hidden variables")
        shown = self.shown()
        inner = {
            name: HiddenValues(hv.values, hv.visible & shown) for name, hv in hidden_values(self.env).items()
        }
        visible = self._shown_entries(shown)
        own = {
            variable.name: HiddenValues(self._inner_obs[:, index].astype(np.float64), visible[index])
            for index, variable in self.hidden.items()
        }
        return {**inner, **own}

    def _shown_entries(self, shown: Array) -> dict[int, Array]:
        """Per hidden entry of the inner observation, whether the last observation shows it."""
        return dict.fromkeys(self.hidden, shown)

    def get_state(self) -> dict[str, Any]:
        return self.env.get_state()

    def set_state(self, state: dict[str, Any]) -> None:
        self.env.set_state(state)


class MaskObservation(ObservationTransform):
    """Keeps only the observation entries at ``indices``; ``hidden`` names dropped ones."""

    def __init__(
        self, env: VectorEnv, indices: Sequence[int], hidden: Mapping[int, HiddenVariable] | None = None
    ) -> None:
        self.indices = list(indices)
        if set(hidden or {}) & set(self.indices):
            raise ValueError(f"hidden entries {sorted(hidden or {})} must be outside the kept {self.indices}")
        inner = env.single_observation_space
        space = spaces.Box(inner.low[self.indices], inner.high[self.indices], dtype=np.float32)
        super().__init__(env, space, hidden)

    def transform(self, obs: Array) -> Array:
        return obs[:, self.indices]

    def _shown_entries(self, shown: Array) -> dict[int, Array]:
        # Dropped entries are never shown.
        return {index: np.zeros_like(shown) for index in self.hidden}


class FlickerObservation(ObservationTransform):
    """Replaces each env's whole observation (a vector, or a whole frame stack) by zeros
    with probability ``prob``; keeps the observation dtype. ``hidden`` names inner
    observation entries that are hidden variables while blanked."""

    # Mixed into the seed so the flicker stream differs from the streams that the inner
    # env derives from the same seed.
    _SEED_SALT = 0xF11C

    def __init__(
        self, env: VectorEnv, prob: float, hidden: Mapping[int, HiddenVariable] | None = None
    ) -> None:
        super().__init__(env, env.single_observation_space, hidden)
        self.prob = prob
        self._rng = np.random.default_rng()
        self._blanked = np.zeros(env.num_envs, dtype=np.bool_)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Array, dict[str, Any]]:
        if seed is not None:
            self._rng = np.random.default_rng([self._SEED_SALT, seed])
        return super().reset(seed=seed, options=options)

    def transform(self, obs: Array) -> Array:
        # One draw per env on every call, blank or not, so the stream only depends on
        # the number of calls.
        blanked = self._rng.random(len(obs)) < self.prob
        self._blanked = blanked
        return np.where(blanked.reshape(-1, *[1] * (obs.ndim - 1)), obs.dtype.type(0), obs)

    def shown(self) -> Array:
        return ~self._blanked

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
