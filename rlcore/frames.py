"""Pictures of an episode: env renders or drawn observations, encoded as an MP4 video."""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

__all__ = [
    "MAX_FRAME_SIDE",
    "VIDEO_MEDIA_TYPE",
    "encode_mp4",
    "env_frames",
    "fit_frames",
    "observation_frames",
]

MAX_FRAME_SIDE = 320  # pixels: a CartPole render (600x400) is halved
VIDEO_MEDIA_TYPE = "video/mp4"
_CELL = 24  # pixels per observation entry in a drawn vector observation, at least
_ROW = 16  # entries per row of a drawn vector observation
_MIN_PIXEL_SIDE = 144  # drawn observations are scaled up to at least this wide


def env_frames(envs: Any) -> np.ndarray | None:
    """Each env's ``rgb_array`` render, (num_envs, H, W, 3) uint8; None where the envs do not draw."""
    if getattr(envs, "render_mode", None) != "rgb_array":
        return None
    # pygame (classic control's renderer) opens no window for rgb_array, but initialising
    # its display without one prints an error on a headless worker.
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    frames = envs.render()
    if frames is None or len(frames) == 0:
        return None
    return np.stack([np.asarray(frame, dtype=np.uint8) for frame in frames])


def _diverging(values: np.ndarray) -> np.ndarray:
    """Values in [-1, 1] to RGB: blue for negative, white at 0, red for positive."""
    v = np.clip(values, -1.0, 1.0)[..., None]
    white = np.array([255.0, 255.0, 255.0])
    red, blue = np.array([200.0, 40.0, 40.0]), np.array([40.0, 80.0, 200.0])
    rgb = np.where(v >= 0, white + v * (red - white), white - v * (blue - white))
    return rgb.astype(np.uint8)


def observation_frames(observations: np.ndarray) -> np.ndarray:
    """A picture of each observation of an episode, (T, H, W, 3) uint8.

    Frames (T, C, H, W) uint8 show their newest channel in grey, scaled up; vectors
    (T, D) are heat strips, one cell per entry (16 to a row), blue below 0 and red above,
    on one scale for the whole episode (its largest absolute entry).
    """
    obs = np.asarray(observations)
    if obs.ndim == 4:
        grey = obs[:, -1].astype(np.uint8)
        scale = max(1, math.ceil(_MIN_PIXEL_SIDE / max(grey.shape[1:])))
        grey = grey.repeat(scale, axis=1).repeat(scale, axis=2)
        return np.repeat(grey[..., None], 3, axis=-1)
    flat = obs.reshape(len(obs), -1).astype(np.float64)
    steps, width = flat.shape
    rows = math.ceil(width / _ROW)
    columns = min(width, _ROW)
    grid = np.zeros((steps, rows * columns))
    peak = np.abs(flat).max(initial=0.0)
    grid[:, :width] = flat / peak if peak > 0 else flat
    cells = _diverging(grid.reshape(steps, rows, columns))
    # Entries past the end of the last row stay grey.
    cells.reshape(steps, rows * columns, 3)[:, width:] = 128
    cell = max(_CELL, math.ceil(_MIN_PIXEL_SIDE / columns))
    return cells.repeat(cell, axis=1).repeat(cell, axis=2)


def fit_frames(frames: np.ndarray, max_side: int = MAX_FRAME_SIDE) -> np.ndarray:
    """Frames (T, H, W, 3) shrunk by a whole factor (block means) until no side exceeds `max_side`."""
    factor = math.ceil(max(frames.shape[1:3]) / max_side)
    if factor <= 1:
        return frames
    steps, height, width, _ = frames.shape
    height, width = height // factor * factor, width // factor * factor
    blocks = frames[:, :height, :width].reshape(steps, height // factor, factor, width // factor, factor, 3)
    return blocks.mean(axis=(2, 4)).round().astype(np.uint8)


def _even(frames: np.ndarray) -> np.ndarray:
    """Frames padded with white to an even height and width (H.264's 4:2:0 chroma needs both)."""
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if not pad_h and not pad_w:
        return frames
    return np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), constant_values=255)


def encode_mp4(frames: np.ndarray, fps: float) -> bytes:
    """An H.264 MP4 of frames (T, H, W, 3) uint8, exactly one video frame per step.

    Unlike an animated WebP, whose encoder merges identical frames, the video keeps every
    frame at a constant rate, so step t is at time t / fps: a player seeks to a step with
    ``currentTime = t / fps``. ``+faststart`` puts the index first, so it plays while loading.
    """
    import imageio.v3 as iio  # loads the ffmpeg plugin: only replays need it

    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"frames must be (T, H, W, 3) with T >= 1, got {frames.shape}")
    return iio.imwrite(
        "<bytes>",
        _even(np.ascontiguousarray(frames, dtype=np.uint8)),
        extension=".mp4",
        plugin="FFMPEG",
        fps=fps,
        codec="libx264",
        pixelformat="yuv420p",
        macro_block_size=1,  # already even: no rescaling
        quality=None,  # libx264's own default (CRF 23)
        output_params=["-movflags", "+faststart", "-preset", "veryfast"],
    )
