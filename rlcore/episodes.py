"""Whole episodes for Monte Carlo methods (REINFORCE): play until enough have ended, train each once.

A Monte Carlo return needs the rest of its episode, so an episode still running when an
update is due is not cut: it waits, with its env and its memory state, until it ends, and
enters the update after that, whole. Every step of every finished episode is trained
exactly once, and every episode is replayed from the zero state it started from.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium.vector import VectorEnv

from rlcore.models import ActorCritic
from rlcore.returns import discounted_returns
from rlcore.rollout import Episode, Rollout, RolloutCollector, Sequences

# Steps each env plays between two looks at how many episodes have ended.
BLOCK = 32


@dataclass
class EpisodeSteps:
    """The steps of one finished episode, each (L, ...)."""

    obs: torch.Tensor
    actions: torch.Tensor
    logprobs: torch.Tensor
    rewards: torch.Tensor
    version: int  # how many batches had been handed out when its first step was played

    @property
    def length(self) -> int:
        return int(self.actions.shape[0])


@dataclass
class EpisodeSequences(Sequences):
    """Packed episodes (see `pack_episodes`); `fresh` is 1 on the steps of episodes that the
    current weights played from their first step, where the replay must match exactly."""

    rewards: torch.Tensor
    dones: torch.Tensor
    fresh: torch.Tensor
    position: torch.Tensor  # the step's index in its episode (0 on padding)


@dataclass
class EpisodeBatch:
    """What one update trains: the episodes that ended, and those ended during its collection."""

    episodes: list[EpisodeSteps]
    finished: list[Episode]  # return and length of each, for the metrics
    version: int

    @property
    def steps(self) -> int:
        return sum(e.length for e in self.episodes)


_FIELDS = ("obs", "actions", "logprobs", "rewards")


class EpisodeCollector(RolloutCollector):
    """A rollout collector that hands out whole episodes. No critic, so nothing is bootstrapped."""

    def __init__(
        self,
        envs: VectorEnv,
        policy: ActorCritic,
        device: torch.device,
        seed: int,
        clip_rewards: bool = False,
        bf16: bool = False,
        normalize_reward: bool = False,
        gamma: float = 0.99,
    ) -> None:
        super().__init__(
            envs,
            policy,
            device,
            seed,
            bootstrap_truncated=False,
            clip_rewards=clip_rewards,
            bf16=bf16,
            normalize_reward=normalize_reward,
            gamma=gamma,
        )
        self.version = 0
        self._open: list[dict[str, list[torch.Tensor]]] = [self._empty() for _ in range(self.num_envs)]
        self._open_version = [0] * self.num_envs

    @staticmethod
    def _empty() -> dict[str, list[torch.Tensor]]:
        return {name: [] for name in _FIELDS}

    def collect_episodes(self, min_steps: int) -> EpisodeBatch:
        """Play until the episodes that ended hold at least `min_steps` steps; return them."""
        episodes: list[EpisodeSteps] = []
        finished: list[Episode] = []
        while sum(e.length for e in episodes) < min_steps:
            rollout = self.collect(BLOCK, chunk_length=None)  # replayed from zero: no states kept
            episodes += self._close_episodes(rollout)
            finished += rollout.episodes
        batch = EpisodeBatch(episodes, finished, self.version)
        self.version += 1
        return batch

    def _close_episodes(self, rollout: Rollout) -> list[EpisodeSteps]:
        """Append each env's steps to its open episode; the episodes that ended, in order."""
        dones = rollout.dones.cpu().numpy()
        ended: list[EpisodeSteps] = []
        for env in range(self.num_envs):
            start = 0
            for end in [*(np.flatnonzero(dones[:, env]) + 1), dones.shape[0]]:
                if end == start:
                    continue
                if not self._open[env]["actions"]:
                    self._open_version[env] = self.version
                for name in _FIELDS:
                    self._open[env][name].append(getattr(rollout, name)[start:end, env])
                if dones[end - 1, env]:
                    parts = self._open[env]
                    ended.append(
                        EpisodeSteps(
                            **{n: torch.cat(parts[n]) for n in _FIELDS}, version=self._open_version[env]
                        )
                    )
                    self._open[env] = self._empty()
                start = end
        return ended

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "version": self.version,
            "open": [{n: [t.cpu() for t in parts[n]] for n in _FIELDS} for parts in self._open],
            "open_version": list(self._open_version),
        }

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        super().load_state_dict(saved)
        self.version = int(saved["version"])
        if saved["envs"] is None:
            return  # fresh episodes: the open ones are gone with the old env state
        self._open = [{n: [t.to(self.device) for t in parts[n]] for n in _FIELDS} for parts in saved["open"]]
        self._open_version = list(saved["open_version"])


def pack_episodes(batch: EpisodeBatch, initial_state: torch.Tensor, gamma: float) -> EpisodeSequences:
    """Lay the episodes end to end in columns, each starting with an episode start.

    The memory cores reset at episode starts, so a column holding several episodes replays
    each from a zero state; packing them (longest first, each into the emptiest column)
    keeps the padding, and so the wasted compute, small. `initial_state` is one env's zero
    state (1, *state_shape). `returns` and `advantages` are the discounted returns G_t.
    """
    lengths = [e.length for e in batch.episodes]
    columns = max(1, sum(lengths) // max(lengths))
    fill = [(0, c) for c in range(columns)]  # (steps so far, column): a heap, emptiest first
    where = [(0, 0)] * len(lengths)
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        used, column = heapq.heappop(fill)
        where[i] = (used, column)
        heapq.heappush(fill, (used + lengths[i], column))
    steps = max(used for used, _ in fill)

    device = batch.episodes[0].actions.device
    time = torch.cat([torch.arange(t, t + n) for (t, _), n in zip(where, lengths, strict=True)]).to(device)
    column = torch.cat([torch.full((n,), c) for (_, c), n in zip(where, lengths, strict=True)]).to(device)

    def place(parts: list[torch.Tensor], fill_value: float | bool = 0) -> torch.Tensor:
        values = torch.cat(parts)
        out = values.new_full((steps, columns, *values.shape[1:]), fill_value)
        out[time, column] = values
        return out

    def at(offset: int) -> list[torch.Tensor]:
        """True at each episode's step `offset` (0: first, -1: last)."""
        return [torch.arange(n, device=device) == (offset % n) for n in lengths]

    rewards = place([e.rewards for e in batch.episodes])
    dones = place(at(-1), False)
    returns, _ = discounted_returns(rewards, dones, gamma)
    return EpisodeSequences(
        obs=place([e.obs for e in batch.episodes]),
        actions=place([e.actions for e in batch.episodes]),
        logprobs=place([e.logprobs for e in batch.episodes]),
        values=torch.zeros_like(rewards),
        advantages=returns,
        returns=returns,
        episode_starts=place(at(0), False),
        mask=place([torch.ones(n, device=device) for n in lengths]),
        initial_states=initial_state.expand(columns, *initial_state.shape[1:]).clone(),
        rewards=rewards,
        dones=dones,
        position=place([torch.arange(n, device=device) for n in lengths]),
        fresh=place(
            [
                torch.full((e.length,), float(e.version == batch.version), device=device)
                for e in batch.episodes
            ]
        ),
    )
