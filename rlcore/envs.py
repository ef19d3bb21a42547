"""Allowed environments. (Stub: the env helper replaces this with the full module.)"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EnvInfo:
    """What the service tells a user about an allowed environment."""

    id: str
    description: str
    solved_return: float | None
    needs_memory: bool


ENVS: dict[str, EnvInfo] = {
    info.id: info
    for info in [
        EnvInfo("CartPole-v0", "Balance a pole (200 steps).", 195.0, False),
        EnvInfo("CartPole-v1", "Balance a pole (500 steps).", 475.0, False),
    ]
}
