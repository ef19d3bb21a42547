"""Running observation and reward normalisation, as SB3's VecNormalize and CleanRL's wrappers.

- Observations (`normalize_obs`): (obs - mean) / sqrt(var + 1e-8), clipped to +-10, with
  the running mean and variance of every observation the collector has seen (the first
  ones from the reset, then every step's). `ObsNormalizer` is a module in front of the
  policy's encoder (`ActorCritic.obs_norm`): its statistics are buffers, so they are in
  the state_dict, the checkpoints and policy.safetensors, and traced into policy.onnx.
  The policy takes raw observations everywhere: in the rollout, the update's replay,
  evaluation, `load_policy` and ONNX.
- Rewards (`normalize_reward`): `RewardScaler` divides each reward by the running std of
  each env's discounted return (not centred) and clips to +-10. Only the trained rewards
  are scaled; the reported episode returns stay raw.

When the statistics change. The observation statistics change only between updates,
together with the weights: the collector gathers the moments of the observations it
sees (`RolloutCollector.obs_seen`) and `RolloutCollector.commit_statistics`, which
`rlcore.run.Run.end_update` calls after each update, folds them into the policy's. So a
rollout is acted and replayed with the same normalisation, and the replayed log-probs
equal the acted ones (`losses/replay_error` stays ~0). SB3 normalises with statistics
that move every step and stores the normalised observations instead; here the rollout
keeps raw observations and the policy acting in rollout k uses the statistics of every
observation before it. The reward statistics move every step, as in SB3: the rollout
stores the scaled rewards it trains on, and nothing replays them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

OBS_CLIP = 10.0
REWARD_CLIP = 10.0
EPSILON = 1e-8

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def merge_moments(
    mean: Array, var: Array, count: Any, batch_mean: Array, batch_var: Array, batch_count: Any
) -> tuple[Array, Array, Any]:
    """Mean, (population) variance and count of two sample sets, from each set's own.

    Chan, Golub and LeVeque's parallel formula, as SB3's RunningMeanStd; arithmetic only,
    so it serves numpy arrays and torch tensors alike. At least one set must be non-empty.
    """
    total = count + batch_count
    delta = batch_mean - mean
    new_mean = mean + delta * (batch_count / total)
    m2 = var * count + batch_var * batch_count + delta**2 * (count * batch_count / total)
    return new_mean, m2 / total, total


class RunningMeanStd:
    """Running float64 mean and variance of batches of samples (numpy), from zero samples."""

    def __init__(self, shape: Sequence[int] = ()) -> None:
        self.mean = np.zeros(shape, np.float64)
        self.var = np.ones(shape, np.float64)
        self.count = 0.0

    def update(self, batch: np.ndarray) -> None:
        """Add the samples along the first axis of `batch`."""
        batch = np.asarray(batch, np.float64)
        if batch.shape[0] == 0:
            return
        mean, var, count = merge_moments(
            self.mean, self.var, self.count, batch.mean(0), batch.var(0), float(batch.shape[0])
        )
        # Arrays, also for shape (): numpy's arithmetic on 0-d arrays gives scalars.
        self.mean, self.var, self.count = np.asarray(mean), np.asarray(var), float(count)

    def state_dict(self) -> dict[str, Any]:
        """Tensors and floats only, for `torch.load(weights_only=True)`."""
        return {
            "mean": torch.from_numpy(self.mean.copy()),
            "var": torch.from_numpy(self.var.copy()),
            "count": self.count,
        }

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.mean = saved["mean"].numpy().copy()
        self.var = saved["var"].numpy().copy()
        self.count = float(saved["count"])


class ObsNormalizer(nn.Module):
    """clip((obs - mean) / sqrt(var + epsilon), -clip, clip), from running statistics.

    `mean`, `var` (obs_shape) and `count` () are float64 buffers; they change only through
    `update` and `merge`, never in forward. With no samples yet (mean 0, var 1) it only clips.
    """

    def __init__(self, obs_shape: Sequence[int], clip: float = OBS_CLIP, epsilon: float = EPSILON) -> None:
        super().__init__()
        self.obs_shape = tuple(obs_shape)
        self.clip = clip
        self.epsilon = epsilon
        self.register_buffer("mean", torch.zeros(self.obs_shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(self.obs_shape, dtype=torch.float64))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        # The std in float64, then the observation's dtype (float32; the ONNX copy's buffers
        # are float32 already).
        std = torch.sqrt(self.var + self.epsilon).to(obs.dtype)
        return ((obs - self.mean.to(obs.dtype)) / std).clamp(-self.clip, self.clip)

    @torch.no_grad()
    def update(self, batch: torch.Tensor) -> None:
        """Add observations (..., *obs_shape): every leading index is one sample."""
        samples = batch.reshape(-1, *self.obs_shape).to(self.mean.dtype)
        if samples.shape[0] == 0:
            return
        moments = samples.mean(0), samples.var(0, correction=0), float(samples.shape[0])
        self._set(*merge_moments(self.mean, self.var, self.count, *moments))

    @torch.no_grad()
    def merge(self, other: ObsNormalizer) -> None:
        """Add the samples summarised by `other` (this one or `other` must hold some)."""
        self._set(*merge_moments(self.mean, self.var, self.count, other.mean, other.var, other.count))

    @torch.no_grad()
    def reset(self) -> None:
        """Back to no samples."""
        self.mean.zero_()
        self.var.fill_(1.0)
        self.count.zero_()

    def _set(self, mean: torch.Tensor, var: torch.Tensor, count: torch.Tensor) -> None:
        # In place: the buffers stay the module's (and on its device) for state_dict.
        self.mean.copy_(mean)
        self.var.copy_(var)
        self.count.copy_(count)

    def extra_repr(self) -> str:
        return f"obs_shape={self.obs_shape}, clip={self.clip}, epsilon={self.epsilon}"


def obs_norm_config(clip: float = OBS_CLIP, epsilon: float = EPSILON) -> dict[str, float]:
    """The `obs_norm` entry of a policy config (`rlcore.models.policy_config`): ObsNormalizer's arguments."""
    return {"clip": float(clip), "epsilon": float(epsilon)}


class RewardScaler:
    """Rewards divided by the running std of each env's discounted return, clipped.

    As SB3's VecNormalize (norm_reward): each step R <- gamma * R + r per env, the
    statistics take the new R of every env, the reward is r / sqrt(var(R) + epsilon)
    clipped to +-clip, and R restarts at 0 where the episode ended. Not centred: the
    sign of every reward is kept.
    """

    def __init__(
        self, num_envs: int, gamma: float, clip: float = REWARD_CLIP, epsilon: float = EPSILON
    ) -> None:
        self.gamma = gamma
        self.clip = clip
        self.epsilon = epsilon
        self.returns = np.zeros(num_envs, np.float64)
        self.stats = RunningMeanStd()

    def __call__(self, reward: np.ndarray, done: np.ndarray) -> np.ndarray:
        """The scaled rewards of one step of every env; `done` marks the episodes that ended."""
        self.returns = self.returns * self.gamma + reward
        self.stats.update(self.returns)
        scaled = np.clip(reward / np.sqrt(self.stats.var + self.epsilon), -self.clip, self.clip)
        self.returns[np.asarray(done, dtype=bool)] = 0.0
        return scaled

    def state_dict(self) -> dict[str, Any]:
        return {"returns": torch.from_numpy(self.returns.copy()), "stats": self.stats.state_dict()}

    def load_state_dict(self, saved: dict[str, Any], episodes: bool = True) -> None:
        """Restore the statistics; with `episodes` False (the envs start fresh episodes) the
        running returns restart at 0."""
        self.stats.load_state_dict(saved["stats"])
        self.returns = saved["returns"].numpy().copy() if episodes else np.zeros_like(self.returns)
