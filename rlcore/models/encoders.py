"""Observation encoders: raw observations to a feature vector, kept apart from memory."""

from __future__ import annotations

import torch
from torch import nn


class VectorEncoder(nn.Module):
    """One ReLU layer over a flat observation vector (the thread's `fc1`)."""

    def __init__(self, obs_dim: int, features: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(obs_dim, features), nn.ReLU())
        self.features = features

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)
