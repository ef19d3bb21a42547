"""Majority: a memory task that needs a count, not just one remembered cue."""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class MajorityEnv(gym.Env[np.ndarray, np.int64]):
    """Signs are shown one a step; at the query, name the sign shown most often.

    Observation ``[sign, query]``: for the first ``length`` steps ``sign`` is +1 or -1
    (each with probability 1/2) and ``query`` is 0; then ``sign`` is 0 and ``query`` is 1.
    The action at the query (0: minus, 1: plus) earns +1 if it names the majority and -1
    otherwise, and ends the episode; every other step earns 0. ``length`` is odd, so there
    is always a majority. Without memory the expected return is 0: a policy must keep a
    running count, where CueRecall needs only the first observation.
    """

    LENGTH = 5
    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, length: int = LENGTH) -> None:
        if length < 1 or length % 2 == 0:
            raise ValueError(f"length must be odd and positive, got {length}")
        self.length = length
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)
        self._signs = np.ones(length, dtype=np.float32)
        self._t = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)  # seeds self.np_random, the only source of randomness
        self._signs = self.np_random.choice(np.array([-1.0, 1.0], dtype=np.float32), size=self.length)
        self._t = 0
        return self._observe(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(action):
            raise ValueError(f"invalid action {action!r} for {self.action_space}")
        if self._t < self.length:
            self._t += 1
            return self._observe(), 0.0, False, False, {}
        majority = int(self._signs.sum() > 0)
        return self._observe(), 1.0 if int(action) == majority else -1.0, True, False, {}

    def _observe(self) -> np.ndarray:
        if self._t < self.length:
            return np.array([self._signs[self._t], 0.0], dtype=np.float32)
        return np.array([0.0, 1.0], dtype=np.float32)
