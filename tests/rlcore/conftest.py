"""Fixtures for rlcore tests: small specs and a sink that keeps every point."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest
import torch

from rlcore.spec import TrainSpec


class RecordingSink:
    """Keeps every (step, metrics) point a trainer reports."""

    def __init__(self) -> None:
        self.points: list[tuple[int, dict[str, float]]] = []
        self.flushed_at: list[int] = []

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.points.append((step, metrics))

    def flush(self) -> None:
        self.flushed_at.append(self.points[-1][0] if self.points else 0)

    def values(self, key: str) -> list[float]:
        return [m[key] for _, m in self.points if key in m]


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture(scope="session")
def make_spec() -> Callable[..., TrainSpec]:
    """A spec with overrides; CPU so that results do not depend on the machine."""

    def make(**overrides: Any) -> TrainSpec:
        return TrainSpec.model_validate({"device": "cpu", "checkpoint_interval": 0, **overrides})

    return make


@pytest.fixture(autouse=True)
def _one_torch_thread() -> None:
    # Small networks run fastest, and reproducibly, on one thread; the trainer does the same.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def training_pool() -> Iterator[ProcessPoolExecutor]:
    """Two processes for the learning tests' seeds: one per core of the machine the suite runs on.

    Spawned, not forked: a forked child of a process that has used torch's thread pool can hang.
    """
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool
