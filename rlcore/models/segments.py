"""Cut (time, batch) sequences at episode starts so cuDNN runs them in one call (GPU path).

A rollout chunk may hold several episodes per env column. Looping over time steps in
Python to reset the state at each episode start is what makes other recurrent PPO
implementations slow; instead each column is cut into segments that begin at t=0 or
at an episode start, the segments are packed side by side, and one call of the
recurrent layer runs them all.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Segments:
    """Where each (t, b) step of a (T, B) grid sits among the segments."""

    segment: torch.Tensor  # (B*T,) segment id of each step, column-major order
    position: torch.Tensor  # (B*T,) index of the step inside its segment
    lengths: torch.Tensor  # (S,) length of each segment
    first_of_column: torch.Tensor  # (B,) segment that starts at t=0 of each column
    last_of_column: torch.Tensor  # (B,) segment that ends at t=T-1 of each column
    time_steps: int

    @property
    def count(self) -> int:
        return int(self.lengths.numel())

    def scatter(self, x: torch.Tensor) -> torch.Tensor:
        """(T, B, ...) steps -> (L, S, ...) zero-padded segments."""
        steps = x.transpose(0, 1).reshape(-1, *x.shape[2:])
        out = x.new_zeros(int(self.lengths.max()), self.count, *x.shape[2:])
        out[self.position, self.segment] = steps
        return out

    def gather(self, y: torch.Tensor) -> torch.Tensor:
        """(L, S, ...) segments -> (T, B, ...) steps; the inverse of scatter."""
        steps = y[self.position, self.segment]
        return steps.reshape(-1, self.time_steps, *y.shape[2:]).transpose(0, 1)


def split_at_episode_starts(episode_starts: torch.Tensor) -> Segments:
    """Segment a (T, B) bool grid: a new segment begins at t=0 and at every episode start."""
    time_steps, batch = episode_starts.shape
    begins = episode_starts.clone()
    begins[0] = True
    begins = begins.transpose(0, 1).reshape(-1)  # column-major: all of env 0, then env 1...
    segment = torch.cumsum(begins.long(), 0) - 1
    firsts = torch.nonzero(begins).squeeze(1)
    position = torch.arange(begins.numel(), device=begins.device) - firsts[segment]
    lengths = torch.bincount(segment)
    columns = torch.arange(batch, device=begins.device) * time_steps
    return Segments(
        segment=segment,
        position=position,
        lengths=lengths,
        first_of_column=segment[columns],
        last_of_column=segment[columns + time_steps - 1],
        time_steps=time_steps,
    )
