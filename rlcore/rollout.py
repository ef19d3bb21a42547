"""Vectorised rollouts that carry each env's hidden state and reset it at episode starts.

The collector stores everything an update needs to replay the rollout exactly:
observations, actions, log-probs, values, rewards, episode-start flags and the state
that went into the first step of each replayed chunk (only those: the replay rebuilds
every other state, and a per-step copy of a large state is what makes a rollout run
out of memory). Rollout boundaries are not episode boundaries: the final state is
carried (detached) into the next rollout.

Observations are stored at the env's dtype when it is uint8 (pixel frames: a quarter
of float32's memory; the encoder scales them), as float32 otherwise. On a GPU each
step uploads its observations once, through pinned memory and without waiting, and
brings back only the actions; everything else stays on the device.

Atari conventions: `clip_rewards` trains on sign(reward) while the reported `Episode`
returns stay the raw game score, and an env whose step info holds `game_over` (its
`terminated` also marks lost lives) reports an `Episode` only when the whole game
ends, its return and length summed over every life.

Normalisation (`rlcore.normalization`): with `normalize_reward` the trained rewards are
scaled by the running std of the discounted return (after `clip_rewards`), while the
reported returns stay raw. A policy with an observation normaliser is fed raw
observations, as everywhere; the collector seeds its statistics with the reset
observations, gathers the moments of every later one in `obs_seen`, and folds them in
only in `commit_statistics`, between updates, so that a rollout's replay normalises
exactly as its acting did.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from gymnasium.vector import VectorEnv

from rlcore.device import autocast
from rlcore.envs import EnvStateNotSupported, get_env_state, set_env_state
from rlcore.models import ActorCritic
from rlcore.normalization import ObsNormalizer, RewardScaler
from rlcore.returns import gae


@dataclass
class Episode:
    """A finished episode: its return and length."""

    ret: float
    length: int


@dataclass
class Sequences:
    """Rollout data cut into time-ordered chunks: fields are (L, C, ...) with C chunks.

    `initial_states` (C, *state_shape) is the state that went into each chunk's first
    step; `mask` is 0 on padding (and on steps an algorithm chose not to train on).
    """

    obs: torch.Tensor
    actions: torch.Tensor
    logprobs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    episode_starts: torch.Tensor
    mask: torch.Tensor
    initial_states: torch.Tensor

    @property
    def count(self) -> int:
        return self.obs.shape[1]

    def select(self, chunks: torch.Tensor) -> Sequences:
        """The chunks with the given indices, time order kept inside each."""
        return type(self)(
            **{
                f.name: getattr(self, f.name)[chunks]
                if f.name == "initial_states"
                else getattr(self, f.name)[:, chunks]
                for f in fields(self)
            }
        )

    def minibatches(self, count: int, generator: torch.Generator | None = None) -> list[Sequences]:
        """Shuffle whole chunks (never single steps) into `count` minibatches."""
        order = torch.randperm(self.count, generator=generator, device="cpu").to(self.obs.device)
        return [self.select(part) for part in torch.tensor_split(order, count)]


@dataclass
class Rollout:
    """T steps of N envs. All fields are (T, N, ...) tensors except `last_*`."""

    obs: torch.Tensor
    actions: torch.Tensor
    logprobs: torch.Tensor
    values: torch.Tensor
    rewards: torch.Tensor
    dones: torch.Tensor  # the episode ended at this step (terminated or truncated)
    truncation_values: torch.Tensor  # V(final obs) where the episode was cut by a time limit
    episode_starts: torch.Tensor  # this step is the first of an episode
    # (C, N, *state_shape): the state that went into steps 0, L, 2L, ... with
    # L = `state_interval` (every step when L is 1); None when the collector kept none.
    states: torch.Tensor | None
    state_interval: int | None
    last_value: torch.Tensor  # (N,) V of the observation after the last step
    episodes: list[Episode]

    def gae(self, gamma: float, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
        """GAE advantages and returns of this rollout (see `rlcore.returns.gae`)."""
        return gae(self.rewards, self.values, self.dones, self.truncation_values, self.last_value, gamma, lam)

    def sequences(
        self,
        advantages: torch.Tensor,
        returns: torch.Tensor,
        chunk_length: int,
        mask: torch.Tensor | None = None,
    ) -> Sequences:
        """Cut every env column into chunks of `chunk_length` steps (the last one padded).

        `chunk_length` must be a multiple of the `state_interval` the rollout was
        collected with, so that a stored state goes into every chunk's first step.
        """
        steps, envs = self.rewards.shape
        if self.states is None or self.state_interval is None or chunk_length % self.state_interval:
            kept = "no states" if self.states is None else f"the state every {self.state_interval} steps"
            raise ValueError(
                f"chunks of {chunk_length} steps start from stored states, but this rollout kept "
                f"{kept}; collect it with chunk_length={chunk_length}"
            )
        chunks = -(-steps // chunk_length)
        pad = chunks * chunk_length - steps
        valid = torch.ones_like(self.rewards) if mask is None else mask.to(self.rewards.dtype)

        def cut(x: torch.Tensor) -> torch.Tensor:
            if pad:
                x = torch.cat([x, x.new_zeros(pad, *x.shape[1:])])
            # (chunks * L, N, ...) -> (L, chunks * N, ...), chunk-major columns
            x = x.reshape(chunks, chunk_length, envs, *x.shape[2:]).transpose(0, 1)
            return x.reshape(chunk_length, chunks * envs, *x.shape[3:])

        return Sequences(
            obs=cut(self.obs),
            actions=cut(self.actions),
            logprobs=cut(self.logprobs),
            values=cut(self.values),
            advantages=cut(advantages),
            returns=cut(returns),
            episode_starts=cut(self.episode_starts),
            mask=cut(valid),
            initial_states=self.states[:: chunk_length // self.state_interval].reshape(
                chunks * envs, *self.states.shape[2:]
            ),
        )


class RolloutCollector:
    """Steps a vector env with a policy, keeping each env's state between rollouts."""

    def __init__(
        self,
        envs: VectorEnv,
        policy: ActorCritic,
        device: torch.device,
        seed: int,
        bootstrap_truncated: bool = True,
        clip_rewards: bool = False,
        bf16: bool = False,
        normalize_reward: bool = False,
        gamma: float = 0.99,
    ) -> None:
        self.envs = envs
        self.policy = policy
        self.device = torch.device(device)
        self.bootstrap_truncated = bootstrap_truncated
        self.clip_rewards = clip_rewards
        self.bf16 = bf16  # bf16 autocast of the policy's forward passes (CUDA only)
        self.num_envs = envs.num_envs
        self.global_step = 0
        obs, _ = envs.reset(seed=seed)
        self.obs_dtype = torch.uint8 if np.asarray(obs).dtype == np.uint8 else torch.float32
        self.obs = self._upload(obs, self.obs_dtype)
        self.starts = torch.ones(self.num_envs, dtype=torch.bool, device=device)
        self.state = policy.initial_state(self.num_envs, device)
        self.episode_return = np.zeros(self.num_envs)
        self.episode_length = np.zeros(self.num_envs, dtype=np.int64)
        # `gamma` is the discount of the return whose std scales the rewards.
        self.reward_scaler = RewardScaler(self.num_envs, gamma) if normalize_reward else None
        norm = policy.obs_norm
        # The observations seen since the last `commit_statistics`, summarised.
        self.obs_seen = None if norm is None else ObsNormalizer(norm.obs_shape).to(self.device)
        if norm is not None:
            norm.update(self.obs)  # so the first rollout acts on normalised observations too

    def collect(self, num_steps: int, chunk_length: int | None = 1) -> Rollout:
        """Run every env for `num_steps` steps.

        Keeps the state going into steps 0, chunk_length, 2 * chunk_length, ...: what
        `Rollout.sequences` needs to replay chunks of that length (or of a multiple of
        it). 1 keeps every step's state; None keeps none, for an update that replays
        from zero states only (whole episodes).
        """
        with torch.no_grad(), autocast(self.device, self.bf16):
            return self._collect(num_steps, chunk_length)

    def _collect(self, num_steps: int, chunk_length: int | None) -> Rollout:
        if chunk_length is not None and chunk_length < 1:
            raise ValueError(f"chunk_length must be at least 1 or None, got {chunk_length}")
        n, device = self.num_envs, self.device
        obs = torch.zeros(num_steps, *self.obs.shape, dtype=self.obs_dtype, device=device)
        states = (
            None
            if chunk_length is None
            else torch.zeros(-(-num_steps // chunk_length), *self.state.shape, device=device)
        )
        dist = self.policy.dist
        # (T, N) int64 for Discrete, (T, N, k) int64 for MultiDiscrete, (T, N, d) float32 for
        # Box: the raw samples, whose log-probs the update replays.
        actions = torch.zeros(num_steps, n, *dist.action_shape, dtype=dist.dtype, device=device)
        logprobs, values, rewards, truncation_values = (
            torch.zeros(num_steps, n, device=device) for _ in range(4)
        )
        dones, starts = (torch.zeros(num_steps, n, dtype=torch.bool, device=device) for _ in range(2))
        episodes: list[Episode] = []

        for t in range(num_steps):
            obs[t], starts[t] = self.obs, self.starts
            if states is not None and t % chunk_length == 0:
                states[t // chunk_length] = self.state
            params, value, self.state = self.policy(self.obs[None], self.state, self.starts[None])
            action = dist.sample(params[0])
            actions[t], values[t] = action, value[0]
            logprobs[t] = dist.log_prob(params[0], action)

            # The one copy back to the host each step: the envs need the actions (Box
            # actions clipped or squashed into the space's bounds).
            sent = dist.to_env(action).cpu().numpy()
            next_obs, reward, terminated, truncated, info = self.envs.step(sent)
            self.global_step += n
            done = terminated | truncated
            trained = np.sign(reward) if self.clip_rewards else reward
            if self.reward_scaler is not None:
                trained = self.reward_scaler(trained, done)
            rewards[t] = self._upload(trained, torch.float32)
            dones[t] = self._upload(done, torch.bool)
            if self.bootstrap_truncated and (cut := truncated & ~terminated).any():
                truncation_values[t] = self._final_values(info["final_obs"], cut)
            episodes += self._track_episodes(reward, done, info.get("game_over"), truncated)
            self.obs = self._upload(next_obs, self.obs_dtype)
            self.starts = dones[t].clone()

        _, last_value, _ = self.policy(self.obs[None], self.state, self.starts[None])
        if self.obs_seen is not None:
            # Each observation once: the ones after each step (obs[0] was counted as the
            # last one of the rollout before, or at the reset).
            self.obs_seen.update(obs[1:])
            self.obs_seen.update(self.obs)
        return Rollout(
            obs=obs,
            actions=actions,
            logprobs=logprobs,
            values=values,
            rewards=rewards,
            dones=dones,
            truncation_values=truncation_values,
            episode_starts=starts,
            states=states,
            state_interval=chunk_length,
            last_value=last_value[0],
            episodes=episodes,
        )

    def commit_statistics(self) -> None:
        """Fold the observations seen since the last call into the policy's normaliser.

        Call between updates only, after one and before the next rollout (`Run.end_update`
        does): the statistics a rollout acted with are the ones its replay must use.
        """
        if self.obs_seen is not None and self.policy.obs_norm is not None:
            self.policy.obs_norm.merge(self.obs_seen)
            self.obs_seen.reset()

    def _upload(self, array: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
        """A host array on the collector's device, as `dtype`.

        On CUDA through pinned memory with a non-blocking copy: the host goes on (to
        the next env step) while the copy runs. Pinned blocks come from torch's caching
        host allocator, which keeps each one until its copy has finished.
        """
        host = torch.from_numpy(np.ascontiguousarray(array)).to(dtype)  # cast before the copy
        if self.device.type != "cuda":
            return host
        return host.pin_memory().to(self.device, non_blocking=True)

    def _final_values(self, final_obs: np.ndarray, cut: np.ndarray) -> torch.Tensor:
        """V(final observation) of the episodes cut by a time limit, 0 elsewhere."""
        rows = self._upload(np.flatnonzero(cut), torch.long)
        final = self._upload(final_obs[cut], self.obs_dtype)
        no_start = torch.zeros(1, len(rows), dtype=torch.bool, device=self.device)
        _, value, _ = self.policy(final[None], self.state[rows], no_start)
        out = torch.zeros(self.num_envs, device=self.device)
        out[rows] = value[0]
        return out

    def _track_episodes(
        self,
        reward: np.ndarray,
        done: np.ndarray,
        game_over: np.ndarray | None = None,
        truncated: np.ndarray | None = None,
    ) -> list[Episode]:
        """The episodes that ended at this step, with their raw (unclipped) returns.

        With `game_over` (episodic-life envs) an episode is a whole game: a lost life
        ends a training episode (`done`) but its score keeps adding up until the game is
        over, or is cut by a time limit (`truncated`), which always ends the game.
        """
        self.episode_return += reward
        self.episode_length += 1
        ended = np.asarray(done, dtype=bool)
        if game_over is not None:
            ended = np.asarray(game_over, dtype=bool)
            if truncated is not None:
                ended = ended | np.asarray(truncated, dtype=bool)
        finished = [
            Episode(float(self.episode_return[i]), int(self.episode_length[i])) for i in np.flatnonzero(ended)
        ]
        self.episode_return[ended] = 0.0
        self.episode_length[ended] = 0
        return finished

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue collecting exactly where this one stopped.

        For envs whose state cannot be saved (Box2D), `envs` is None and a resumed run
        starts fresh episodes: training continues, but not bit for bit.
        """
        try:
            envs = get_env_state(self.envs)
        except EnvStateNotSupported:
            envs = None
        return {
            "global_step": self.global_step,
            "obs": self.obs.cpu(),
            "starts": self.starts.cpu(),
            "state": self.state.cpu(),
            "episode_return": torch.as_tensor(self.episode_return),
            "episode_length": torch.as_tensor(self.episode_length),
            "envs": envs,
            "obs_seen": None if self.obs_seen is None else _cpu(self.obs_seen.state_dict()),
            "reward_scaler": None if self.reward_scaler is None else self.reward_scaler.state_dict(),
        }

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.global_step = int(saved["global_step"])
        # Statistics of training so far (absent from checkpoints made before normalisation).
        if self.obs_seen is not None and saved.get("obs_seen") is not None:
            self.obs_seen.load_state_dict(saved["obs_seen"])
        if self.reward_scaler is not None and saved.get("reward_scaler") is not None:
            self.reward_scaler.load_state_dict(saved["reward_scaler"], episodes=saved["envs"] is not None)
        if saved["envs"] is None:
            return  # keep the freshly reset envs, states and episode counters
        self.obs = saved["obs"].to(self.device)
        self.starts = saved["starts"].to(self.device)
        self.state = saved["state"].to(self.device)
        self.episode_return = saved["episode_return"].numpy().copy()
        self.episode_length = saved["episode_length"].numpy().copy()
        set_env_state(self.envs, saved["envs"])


def _cpu(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: tensor.cpu() for name, tensor in tensors.items()}
