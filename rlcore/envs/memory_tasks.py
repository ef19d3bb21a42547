"""Pure memory tasks: recall a cue seen many steps earlier, as vectors or as small frames."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from rlcore.envs.hidden import HiddenValues, HiddenVariable
from rlcore.envs.pomdp import FlickerObservation
from rlcore.envs.registry import (
    CUE_RECALL_DELAY,
    CUE_RECALL_PIXELS_DELAY,
    EnvInfo,
    EnvOptions,
    register_builders,
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

PIXELS_SIZE = 36  # the smallest input a Nature CNN takes: 36 -> 8 -> 3 -> 1
PIXELS_SQUARE = 12
PIXELS_BAR = 4  # rows of the query bar at the bottom
PIXELS_BRIGHT = 255

CUE = HiddenVariable("cue", "discrete", classes=2, description="the cue shown at the first step")


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
        self.single_observation_space = self._observation_space()
        self.single_action_space = spaces.Discrete(2)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._cues = np.zeros(num_envs, dtype=np.int64)
        self._t = np.zeros(num_envs, dtype=np.int64)

    def _observation_space(self) -> spaces.Box:
        return spaces.Box(0.0, 1.0, shape=(3,), dtype=np.float32)

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

    def hidden_variables(self) -> tuple[HiddenVariable, ...]:
        return (CUE,)

    def hidden_values(self) -> dict[str, HiddenValues]:
        # Shown at an episode's first step only.
        return {CUE.name: HiddenValues(self._cues.copy(), self._t == 0)}

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


class CueRecallPixelsVectorEnv(CueRecallVectorEnv):
    """CueRecall drawn as uint8 frames of shape (1, 36, 36), for convolutional encoders.

    At the first step a bright 12x12 square sits in the middle of the left (cue 0) or the
    right (cue 1) half; then ``delay`` frames are all zeros; at the query step a bright bar
    fills the bottom rows. Rewards and episode ends are those of CueRecall.
    """

    def __init__(self, num_envs: int, delay: int = CUE_RECALL_PIXELS_DELAY) -> None:
        super().__init__(num_envs, delay)

    def _observation_space(self) -> spaces.Box:
        return spaces.Box(0, PIXELS_BRIGHT, shape=(1, PIXELS_SIZE, PIXELS_SIZE), dtype=np.uint8)

    def _observe(self) -> Array:
        obs = np.zeros((self.num_envs, 1, PIXELS_SIZE, PIXELS_SIZE), dtype=np.uint8)
        half = PIXELS_SIZE // 2
        top = (PIXELS_SIZE - PIXELS_SQUARE) // 2
        for i in np.flatnonzero(self._t == 0):
            left = self._cues[i] * half + (half - PIXELS_SQUARE) // 2
            obs[i, 0, top : top + PIXELS_SQUARE, left : left + PIXELS_SQUARE] = PIXELS_BRIGHT
        obs[self._t == self.delay + 1, 0, -PIXELS_BAR:, :] = PIXELS_BRIGHT
        return obs

    def _kind(self) -> str:
        return f"CueRecallPixels(delay={self.delay})"


def _cue_recall(info: EnvInfo, num_envs: int, options: EnvOptions) -> VectorEnv:
    return CueRecallVectorEnv(num_envs)


def _cue_recall_pixels(info: EnvInfo, num_envs: int, options: EnvOptions) -> VectorEnv:
    envs = CueRecallPixelsVectorEnv(num_envs)
    return FlickerObservation(envs, options.flicker) if options.flicker > 0 else envs


BUILDERS = {
    "CueRecall-v0": _cue_recall,
    "CueRecallPixels-v0": _cue_recall_pixels,
}
register_builders("memory", BUILDERS)
