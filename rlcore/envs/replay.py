"""Exact save/restore by replay, for envs whose state cannot be read out.

Each sub-env starts every episode with a seed drawn from its own generator, so an env's
future is fixed by (the seed of its current episode, the actions since that reset, its
seed generator's state). ``EpisodeLog`` keeps exactly that, as plain Python types; a
restore resets each env with its seed and steps it through its actions again.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rlcore.envs.state import Array, _decode_bytes, _encode_bytes, _rng_state, _set_rng_state

SEED_BOUND = 2**31 - 1  # fits every consumer of a seed: C ints, np.random.seed, random.seed


class EpisodeLog:
    """Per sub-env: its seed generator, its current episode's seed and its actions since."""

    def __init__(self, num_envs: int, action_shape: tuple[int, ...], action_dtype: np.dtype[Any]) -> None:
        self.num_envs = num_envs
        self.action_shape = action_shape
        # Little-endian, so that a saved log reads back the same on any machine.
        self.action_dtype = np.dtype(action_dtype).newbyteorder("<")
        self.seed(None)
        self.seeds = [-1] * num_envs
        self.actions: list[list[Array]] = [[] for _ in range(num_envs)]

    def seed(self, seed: int | None) -> None:
        """Restart every seed generator: env i's from child i of ``SeedSequence(seed)``, so
        its episodes depend on (seed, i) but not on the number of envs."""
        children = np.random.SeedSequence(seed).spawn(self.num_envs)
        self._rngs = [np.random.default_rng(child) for child in children]

    def start(self, env: int) -> int:
        """Begin a new episode of ``env``: the seed to reset it with."""
        self.seeds[env] = int(self._rngs[env].integers(0, SEED_BOUND))
        self.actions[env] = []
        return self.seeds[env]

    def record(self, env: int, action: Array) -> None:
        self.actions[env].append(np.array(action, dtype=self.action_dtype).reshape(self.action_shape))

    def get_state(self) -> dict[str, Any]:
        return {
            "seeds": list(self.seeds),
            "actions": [self._encode(actions) for actions in self.actions],
            "seed_rngs": [_rng_state(rng) for rng in self._rngs],
        }

    def set_state(self, state: dict[str, Any]) -> None:
        if len(state["seeds"]) != self.num_envs:
            raise ValueError(f"episode log is for {len(state['seeds'])} envs, not {self.num_envs}")
        self.seeds = [int(s) for s in state["seeds"]]
        self.actions = [self._decode(text) for text in state["actions"]]
        for rng, rng_state in zip(self._rngs, state["seed_rngs"], strict=True):
            _set_rng_state(rng, rng_state)

    def _encode(self, actions: list[Array]) -> str:
        table = np.zeros((0, *self.action_shape), self.action_dtype) if not actions else np.stack(actions)
        return _encode_bytes(table.view(np.uint8).ravel())

    def _decode(self, text: str) -> list[Array]:
        table = _decode_bytes(text).view(self.action_dtype).reshape(-1, *self.action_shape)
        return list(table)
