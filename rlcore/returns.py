"""Returns and advantages, computed per env backwards in time, never across an episode end."""

from __future__ import annotations

import torch


def discounted_returns(
    rewards: torch.Tensor, dones: torch.Tensor, gamma: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Monte Carlo returns G_t = r_t + gamma * G_{t+1} within each episode.

    Also returns `complete`: True for steps whose episode ends inside the rollout. The
    others lack their future rewards, and REINFORCE has no critic to fill them in.
    """
    returns = torch.zeros_like(rewards)
    complete = torch.zeros_like(dones)
    future = torch.zeros_like(rewards[0])
    ends_later = torch.zeros_like(dones[0])
    for t in reversed(range(rewards.shape[0])):
        future = rewards[t] + gamma * future * ~dones[t]
        ends_later = dones[t] | ends_later
        returns[t], complete[t] = future, ends_later
    return returns, complete


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
    advantages = torch.zeros_like(rewards)
    next_advantage = torch.zeros_like(last_value)
    next_value = last_value
    for t in reversed(range(rewards.shape[0])):
        next_value = torch.where(dones[t], truncation_values[t], next_value)
        delta = rewards[t] + gamma * next_value - values[t]
        next_advantage = delta + gamma * lam * next_advantage * ~dones[t]
        advantages[t] = next_advantage
        next_value = values[t]
    return advantages, advantages + values
