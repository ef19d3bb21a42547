"""Observation encoders: raw observations to a feature vector, kept apart from memory."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

# Nature-CNN (Mnih et al. 2015): (out_channels, kernel, stride) of each convolution.
NATURE_CONVS = ((32, 8, 4), (64, 4, 2), (64, 3, 1))
NATURE_FEATURES = 512
# The smallest frame side the three convolutions leave at least one pixel of.
MIN_FRAME_SIDE = 36


def nature_conv_output(height: int, width: int) -> tuple[int, int, int]:
    """(channels, height, width) after the Nature-CNN's convolutions of an H x W frame."""
    for _, kernel, stride in NATURE_CONVS:
        height, width = (height - kernel) // stride + 1, (width - kernel) // stride + 1
    return NATURE_CONVS[-1][0], height, width


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


class NatureCNN(nn.Module):
    """`cnn`: the Nature-CNN over pixel frames (..., C, H, W) -> (..., 512) features.

    Frames arrive as raw pixel values 0..255, uint8 in the rollout (a quarter of the
    memory of float32), and are scaled to [0, 1] here, on the device the network runs
    on; any other dtype holding 0..255 gives the same features. Any leading dims (T, B
    or T*B) are flattened for the convolutions and restored. Layers are initialised
    orthogonally with gain sqrt(2) and zero biases, as CleanRL's ppo_atari_lstm.
    """

    def __init__(self, obs_shape: Sequence[int], features: int = NATURE_FEATURES) -> None:
        super().__init__()
        channels, height, width = obs_shape
        if min(height, width) < MIN_FRAME_SIDE:
            raise ValueError(
                f"the cnn encoder needs frames of at least {MIN_FRAME_SIDE}x{MIN_FRAME_SIDE}, "
                f"got {height}x{width}"
            )
        layers: list[nn.Module] = []
        for out_channels, kernel, stride in NATURE_CONVS:
            layers += [nn.Conv2d(channels, out_channels, kernel, stride), nn.ReLU()]
            channels = out_channels
        flat = math.prod(nature_conv_output(height, width))
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(flat, features), nn.ReLU())
        for layer in self.net:
            if isinstance(layer, nn.Conv2d | nn.Linear):
                nn.init.orthogonal_(layer.weight, math.sqrt(2))
                nn.init.zeros_(layer.bias)
        self.frame_shape = tuple(obs_shape)
        self.features = features
        # NHWC weights and frames: oneDNN's convolutions then run about 1.9x faster
        # (forward and backward, one CPU thread, 1 frame; 1.3x with 4), and cuDNN's
        # bf16 ones use tensor cores. Only the memory order changes, not the values.
        self.to(memory_format=torch.channels_last)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        leading = obs.shape[:-3]
        frames = obs.reshape(-1, *self.frame_shape).to(torch.float32) / 255.0
        frames = frames.contiguous(memory_format=torch.channels_last)
        return self.net(frames).reshape(*leading, self.features)


Encoder = VectorEncoder | FlatObservation | NatureCNN


def encoder_for(obs_shape: Sequence[int], requested: str) -> str:
    """The encoder a policy gets on observations of this shape.

    Pixel frames (C, H, W) always get `cnn`; vectors get the requested `dense` or `none`.
    """
    if len(obs_shape) == 3:
        return "cnn"
    if requested == "cnn":
        raise ValueError(
            f"the cnn encoder reads (C, H, W) frames, not observations of shape {tuple(obs_shape)}"
        )
    return requested


def build_encoder(kind: str, obs_shape: Sequence[int], features: int) -> Encoder:
    """The observation encoder for a policy config's `encoder` name.

    `features` is the width of `dense`; `cnn` always makes NATURE_FEATURES features.
    """
    if kind == "cnn":
        if len(obs_shape) != 3:
            raise ValueError(
                f"the cnn encoder reads (C, H, W) frames, not observations of shape {tuple(obs_shape)}"
            )
        return NatureCNN(obs_shape)
    if kind not in ("dense", "none"):
        raise ValueError(f"unknown encoder {kind!r}")
    if len(obs_shape) == 3:
        raise ValueError(f"the {kind} encoder reads vectors; frames of shape {tuple(obs_shape)} need cnn")
    if kind == "dense":
        return VectorEncoder(math.prod(obs_shape), features)
    return FlatObservation(math.prod(obs_shape))
