"""Loss helpers shared by the algorithms."""

from __future__ import annotations

import torch


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the steps where mask is 1 (padding and untrainable steps excluded)."""
    return (x * mask).sum() / mask.sum().clamp(min=1.0)


def normalize(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance over the masked steps."""
    mean = masked_mean(x, mask)
    std = masked_mean((x - mean) ** 2, mask).sqrt()
    return (x - mean) / (std + 1e-8)


def replay_error(logprobs: torch.Tensor, acted: torch.Tensor, mask: torch.Tensor) -> float:
    """Largest gap between log-probs replayed by the update and those acted with.

    Before any gradient step it must be ~0: a policy trained on other log-probs than
    it acted with (the forum thread's bug) shows up here at once.
    """
    return float(((logprobs - acted).abs() * mask).max())


class Means:
    """Means of per-minibatch statistics over an update, kept on the device until read."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, **values: torch.Tensor) -> None:
        """One minibatch's values; every call names the same statistics."""
        for name, value in values.items():
            self.sums[name] = self.sums.get(name, 0.0) + value.detach()
        self.count += 1

    def mean(self, name: str) -> float:
        return float(self.sums[name] / self.count)

    def means(self, prefix: str = "") -> dict[str, float]:
        """Every statistic's mean, keyed `prefix + name`."""
        return {prefix + name: self.mean(name) for name in self.sums}
