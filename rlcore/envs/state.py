"""Helpers every family shares: plain-type encoding of env state and the final-obs step info.

``torch.load(weights_only=True)`` refuses numpy arrays, so arrays travel as nested lists
with their dtype and shape (float64 -> Python float -> float64 is exact), and long byte
logs as base64 text.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

Array = np.ndarray
StepResult = tuple[Array, Array, Array, Array, dict[str, Any]]


def _encode_array(array: Any) -> dict[str, Any]:
    array = np.asarray(array)
    return {"dtype": str(array.dtype), "shape": list(array.shape), "data": array.tolist()}


def _decode_array(encoded: dict[str, Any]) -> Array:
    return np.asarray(encoded["data"], dtype=encoded["dtype"]).reshape(encoded["shape"])


def _encode_bytes(array: Array) -> str:
    """A 1-d uint8 array as base64 text: a third of the size of a list of ints."""
    return base64.b64encode(np.ascontiguousarray(array, dtype=np.uint8).tobytes()).decode("ascii")


def _decode_bytes(text: str) -> Array:
    return np.frombuffer(base64.b64decode(text), dtype=np.uint8).copy()


def _rng_state(rng: np.random.Generator) -> dict[str, Any]:
    return rng.bit_generator.state


def _set_rng_state(rng: np.random.Generator, state: dict[str, Any]) -> None:
    rng.bit_generator.state = state


def _check_state(state: dict[str, Any], kind: str, num_envs: int) -> None:
    if state.get("kind") != kind or state.get("num_envs") != num_envs:
        raise ValueError(
            f"env state is for {state.get('kind')!r} with {state.get('num_envs')} envs; "
            f"this env is {kind!r} with {num_envs} envs"
        )


def _final_obs_info(last_obs: Array, ended: Array) -> dict[str, Array]:
    """The step-info entries for the contract: last observations where ``ended``, zeros elsewhere.

    Keeps the dtype of ``last_obs`` (float32 vectors, uint8 frames).
    """
    final_obs = np.zeros_like(last_obs)
    final_obs[ended] = last_obs[ended]
    return {"final_obs": final_obs, "_final_obs": np.array(ended, dtype=np.bool_)}
