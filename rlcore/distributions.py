"""Categorical action distribution on raw logits, without torch.distributions' overhead.

Acting calls these once per env step, where torch.distributions' argument checks and
object construction cost more than the network itself.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sample(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One action per row of logits (..., A), drawn from softmax(logits)."""
    probs = F.softmax(logits.reshape(-1, logits.shape[-1]), dim=-1)
    return torch.multinomial(probs, 1, generator=generator).reshape(logits.shape[:-1])


def log_prob(logits: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """log pi(a) for each action."""
    return F.log_softmax(logits, dim=-1).gather(-1, actions.unsqueeze(-1)).squeeze(-1)


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of each row's distribution."""
    log_p = F.log_softmax(logits, dim=-1)
    return -(log_p.exp() * log_p).sum(-1)
