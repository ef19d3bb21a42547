"""Returns and advantages, computed per env backwards in time, never across an episode end.

The time loops run in numpy on the CPU: each step is a few operations on rows of a few
floats, where a torch operator's dispatch (several microseconds) costs more than the math
(GAE over 128 x 8 steps: 8.3 ms with torch ops, 1.1 ms in numpy, on a 2-core AVX2 host).
The arithmetic is the same, in the same float32 order, so the results are bit-identical.
"""

from __future__ import annotations

import numpy as np
import torch


def discounted_returns(
    rewards: torch.Tensor, dones: torch.Tensor, gamma: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Monte Carlo returns G_t = r_t + gamma * G_{t+1} within each episode.

    Also returns `complete`: True for steps whose episode ends inside the rollout. The
    others lack their future rewards, and REINFORCE has no critic to fill them in.
    """
    r, done = _numpy(rewards), _numpy(dones)
    returns, complete = np.zeros_like(r), np.zeros_like(done)
    future, ends_later = np.zeros_like(r[0]), np.zeros_like(done[0])
    g = r.dtype.type(gamma)
    for t in reversed(range(r.shape[0])):
        future = r[t] + g * future * ~done[t]
        ends_later = done[t] | ends_later
        returns[t], complete[t] = future, ends_later
    return _like(returns, rewards), _like(complete, dones)


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    truncation_values: torch.Tensor,
    last_value: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016); returns (advantages, returns).

    At an episode end the next value is V(final obs) for a time-limit truncation and 0
    for a termination (`truncation_values` holds exactly that), so truncated episodes
    are bootstrapped and terminated ones are not.
    """
    r, v, done, v_trunc = (_numpy(x) for x in (rewards, values, dones, truncation_values))
    advantages = np.zeros_like(r)
    next_advantage, next_value = np.zeros_like(v[0]), _numpy(last_value)
    g, g_lam = r.dtype.type(gamma), r.dtype.type(gamma * lam)
    for t in reversed(range(r.shape[0])):
        next_value = np.where(done[t], v_trunc[t], next_value)
        delta = r[t] + g * next_value - v[t]
        next_advantage = delta + g_lam * next_advantage * ~done[t]
        advantages[t] = next_advantage
        next_value = v[t]
    advantages_t = _like(advantages, rewards)
    return advantages_t, advantages_t + values


def _numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy()


def _like(x: np.ndarray, reference: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(x).to(reference.device)
