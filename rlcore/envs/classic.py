"""Classic-control and Box2D envs: numpy CartPole with same-step autoreset, and Gymnasium's
SyncVectorEnv (Acrobot, MountainCar, LunarLander, Pendulum, their continuous-action
versions) put under the array contract. Box-action envs take float32 actions (N, d).

All of them are built in ``rgb_array`` render mode, so ``envs.render()`` draws each env's
current state (for replays); nothing is drawn unless it is called."""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv, VectorWrapper
from gymnasium.wrappers import TimeLimit

from rlcore.envs.hidden import ANGULAR_VELOCITY, CART_VELOCITY, POLE_ANGULAR_VELOCITY
from rlcore.envs.pomdp import FlickerObservation, MaskObservation
from rlcore.envs.registry import (
    FLICKER_PROB,
    EnvInfo,
    EnvOptions,
    EnvStateNotSupported,
    register_builders,
    supports_state,
)
from rlcore.envs.state import (
    Array,
    StepResult,
    _check_state,
    _decode_array,
    _encode_array,
    _final_obs_info,
    _rng_state,
    _set_rng_state,
)

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


# --- Gymnasium SyncVectorEnv ------------------------------------------------------


def _time_limit(env: gym.Env) -> TimeLimit:
    while isinstance(env, gym.Wrapper):
        if isinstance(env, TimeLimit):
            return env
        env = env.env
    raise TypeError(f"{env} has no TimeLimit wrapper")


class _SyncArrayFinalObs(VectorWrapper):
    """Puts a SAME_STEP ``SyncVectorEnv`` under the package's array contract.

    SyncVectorEnv reports final observations as an object array, only when some env
    ended; this wrapper always returns an array (float32 by default, see ``_observe``)
    and its mask.
    """

    # Why an env whose `supports_state` is False cannot save its state.
    no_state_reason = "its Box2D world is not serialisable"

    def __init__(self, env: SyncVectorEnv, env_id: str) -> None:
        super().__init__(env)
        self.env_id = env_id

    def _observe(self, obs: Any) -> Array:
        """A batch of the sub-envs' observations as the contract's array."""
        return np.asarray(obs, dtype=np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Array, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        return self._observe(obs), info

    def step(self, actions: Array) -> StepResult:
        obs, reward, terminated, truncated, info = self.env.step(actions)
        obs = self._observe(obs)
        ended = info.get("_final_obs", np.zeros(self.num_envs, dtype=np.bool_))
        last_obs = np.zeros_like(obs)
        if ended.any():
            last_obs[ended] = self._observe(np.stack([info["final_obs"][i] for i in np.flatnonzero(ended)]))
        info = {**info, **_final_obs_info(last_obs, ended)}
        return obs, np.asarray(reward, dtype=np.float32), terminated, truncated, info

    def _sub_envs(self) -> list[gym.Env]:
        if not supports_state(self.env_id):
            raise EnvStateNotSupported(
                f"{self.env_id} cannot save or restore its state ({self.no_state_reason}); "
                "a resumed run must restart its episodes"
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


# --- builders ---------------------------------------------------------------------


# CartPole's observation (and state) is [cart position, cart velocity, pole angle, pole
# angular velocity]; the POMDP variants hide the velocities.
_CARTPOLE_VELOCITIES = {1: CART_VELOCITY, 3: POLE_ANGULAR_VELOCITY}


def _cartpole(info: EnvInfo, num_envs: int, options: EnvOptions) -> VectorEnv:
    return _SameStepCartPole(
        num_envs=num_envs, max_episode_steps=info.max_episode_steps, render_mode="rgb_array"
    )


def _sync(
    info: EnvInfo, num_envs: int, options: EnvOptions, gym_id: str | None = None, **kwargs: Any
) -> VectorEnv:
    """Gymnasium's `gym_id` (default: the same id) made with `kwargs`, as env `info.id`."""
    envs = gym.make_vec(
        gym_id or info.id,
        num_envs=num_envs,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
        render_mode="rgb_array",
        **kwargs,
    )
    return _SyncArrayFinalObs(envs, info.id)


def _pendulum_masked(info: EnvInfo, num_envs: int, options: EnvOptions) -> VectorEnv:
    # cos and sin of the angle, as rl-zoo3's PendulumNoVel-v1.
    envs = _sync(info, num_envs, options, gym_id="Pendulum-v1")
    return MaskObservation(envs, indices=(0, 1), hidden={2: ANGULAR_VELOCITY})


def _lunar_lander_continuous(info: EnvInfo, num_envs: int, options: EnvOptions) -> VectorEnv:
    return _sync(info, num_envs, options, gym_id="LunarLander-v3", continuous=True)


def _cartpole_masked(info: EnvInfo, num_envs: int, options: EnvOptions) -> VectorEnv:
    # Cart position and pole angle.
    return MaskObservation(_cartpole(info, num_envs, options), indices=(0, 2), hidden=_CARTPOLE_VELOCITIES)


def _cartpole_flicker(info: EnvInfo, num_envs: int, options: EnvOptions) -> VectorEnv:
    return FlickerObservation(_cartpole(info, num_envs, options), FLICKER_PROB, hidden=_CARTPOLE_VELOCITIES)


BUILDERS = {
    "CartPole-v0": _cartpole,
    "CartPole-v1": _cartpole,
    "CartPoleMasked-v1": _cartpole_masked,
    "CartPoleFlicker-v1": _cartpole_flicker,
    "Acrobot-v1": _sync,
    "MountainCar-v0": _sync,
    "LunarLander-v3": _sync,
    "Pendulum-v1": _sync,
    "PendulumMasked-v1": _pendulum_masked,
    "MountainCarContinuous-v0": _sync,
    "LunarLanderContinuous-v3": _lunar_lander_continuous,
}
register_builders("classic", BUILDERS)
