"""Hidden variables: the parts of an env's state that its observation does not show.

A partially observed env hides some of its state from the agent: masked CartPole its
velocities, CueRecall its cue after the first step. Envs that know what they hide say so
with two methods (the `Hiding` protocol):

- ``hidden_variables()``: what is hidden, a fixed tuple of `HiddenVariable`;
- ``hidden_values()``: for each of them, per env, its value in the state that the last
  observation returned (by ``reset`` or ``step``) comes from, and whether that
  observation shows it. Under same-step autoreset a row whose episode just ended
  describes the next episode's first state, as its observation does.

Observation wrappers pass on what their inner env hides and add what they hide
themselves. `hidden_variables(envs)` and `hidden_values(envs)` work on any env from
``make_vec_env``: one that hides nothing, or does not say, gives ``()`` and ``{}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "ANGULAR_VELOCITY",
    "CART_POSITION",
    "CART_VELOCITY",
    "HIDDEN_KINDS",
    "POLE_ANGLE",
    "POLE_ANGULAR_VELOCITY",
    "HiddenValues",
    "HiddenVariable",
    "Hiding",
    "hidden_values",
    "hidden_variables",
]

HIDDEN_KINDS = ("continuous", "discrete")


@dataclass(frozen=True)
class HiddenVariable:
    """One hidden variable: ``continuous`` (a float) or ``discrete`` (an int in [0, classes))."""

    name: str
    kind: str
    classes: int = 0
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in HIDDEN_KINDS:
            raise ValueError(f"kind must be one of {HIDDEN_KINDS}, got {self.kind!r}")
        if (self.kind == "discrete") != (self.classes >= 2):
            raise ValueError(f"{self.name}: a discrete variable has 2 or more classes, a continuous one none")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "classes": self.classes,
            "description": self.description,
        }


@dataclass(frozen=True)
class HiddenValues:
    """One variable across the envs: ``values`` (num_envs,) float64 or int64, ``visible`` (num_envs,) bool."""

    values: np.ndarray
    visible: np.ndarray


@runtime_checkable
class Hiding(Protocol):
    def hidden_variables(self) -> tuple[HiddenVariable, ...]: ...

    def hidden_values(self) -> dict[str, HiddenValues]: ...


def hidden_variables(envs: Any) -> tuple[HiddenVariable, ...]:
    """What ``envs`` hide from the agent; ``()`` for envs that hide nothing or do not say."""
    return envs.hidden_variables() if isinstance(envs, Hiding) else ()


def hidden_values(envs: Any) -> dict[str, HiddenValues]:
    """Each hidden variable's values for the last observation of ``envs``, by name."""
    return envs.hidden_values() if isinstance(envs, Hiding) else {}


def continuous(name: str, description: str) -> HiddenVariable:
    return HiddenVariable(name, "continuous", description=description)


# The physical variables the CartPole and Pendulum variants hide, shared by the families.
CART_POSITION = continuous("cart_position", "cart position (m)")
CART_VELOCITY = continuous("cart_velocity", "cart velocity (m/s)")
POLE_ANGLE = continuous("pole_angle", "pole angle (rad)")
POLE_ANGULAR_VELOCITY = continuous("pole_angular_velocity", "pole angular velocity (rad/s)")
ANGULAR_VELOCITY = continuous("angular_velocity", "pendulum angular velocity (rad/s)")
