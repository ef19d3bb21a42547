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


class FlatObservation(nn.Module):
    """No encoder: the memory core reads the observation itself, as in sb3-contrib's
    LSTM policies. Cheaper when the observation is small (a GRU's input weights already
    are a linear layer)."""

    def __init__(self, obs_dim: int) -> None:
        super().__init__()
        self.features = obs_dim

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return obs


def build_encoder(kind: str, obs_dim: int, features: int) -> VectorEncoder | FlatObservation:
    """The observation encoder for a spec's `encoder` name."""
    if kind == "dense":
        return VectorEncoder(obs_dim, features)
    if kind == "none":
        return FlatObservation(obs_dim)
    raise ValueError(f"unknown encoder {kind!r}")
