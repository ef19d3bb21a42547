"""Fixtures for rlcore tests: small specs and a sink that keeps every point."""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.pool
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from multiprocessing.pool import AsyncResult
from pathlib import Path
from typing import Any, ClassVar
from unittest import mock

import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from rlcore.spec import TrainSpec
from rlcore.trainer import TrainResult, train
from tests.rlcore.learning_runs import RUNS, SEEDS


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


def assert_same_points(got: RecordingSink, expected: RecordingSink, ignore: tuple[str, ...] = ()) -> None:
    """Same steps and, up to float noise, the same metrics, except the timings (and `ignore`'s prefixes)."""
    assert [step for step, _ in got.points] == [step for step, _ in expected.points]
    left_out = ("perf/", *ignore)
    for (step, a), (_, b) in zip(got.points, expected.points, strict=True):
        a, b = ({k: v for k, v in m.items() if not k.startswith(left_out)} for m in (a, b))
        assert a == pytest.approx(b, abs=1e-6), f"step {step}"


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


def _run_behind_the_other_tests() -> None:
    """Lowest CPU priority for this process: it takes only what the rest of the suite leaves idle."""
    # With autogroup scheduling (Linux's default), nice weighs only against processes of the
    # same session, and the service the tests start runs in sessions of its own: so a session
    # of its own for this process, with that group niced too.
    os.setsid()
    with contextlib.suppress(OSError):
        Path("/proc/self/autogroup").write_text("19")
    os.nice(19)


# How long an idle OpenMP thread spins before it sleeps. libgomp's default (300,000 spins)
# keeps the second thread of a two-thread run busy through the serial code between
# parallel operators. ppo-gru-v1 (200k steps) on a 2-core AVX2 host, two threads, in two
# sessions of the same day: 137 s of CPU in 68 s with the default, both times; with 10,000
# spins 86 s in 46 s, then 115 s in 68 s (one thread: 55 s in 51-55 s). Fewer spins (3,000)
# saved as much CPU but sometimes took 90-106 s. Waiting does not change how the work is
# split: the results are the same.
TWO_THREAD_SPINS = "10000"


class TrainedRuns:
    """The learning runs (`learning_runs.RUNS`), each on every seed in SEEDS; `trained(name)` their folders.

    The one-thread seeds of every run are queued when the tests are collected, on two
    background processes (one per core) at the lowest CPU priority: they train on what the
    rest of the suite leaves idle, and the tests that read them run last. The last seed
    of each run trains with `torch_threads: 2`; its two threads wait on each other at every
    parallel operator, so beside another run it would crawl: those seeds train one at a
    time, also at the lowest priority, from the moment the background is done. By then the
    rest of the suite mostly waits on its service processes and leaves about a core idle.
    `results(name)` are the runs' `TrainResult`s, in the order of SEEDS.
    """

    def __init__(self, root: Path, names: list[str]) -> None:
        self.root = root
        # Spawned, not forked: a forked child of a process that has used torch's thread pool can hang.
        self.context = multiprocessing.get_context("spawn")
        self.background = self.context.Pool(2, initializer=_run_behind_the_other_tests)
        self.pending = {
            name: [self._submit(self.background, name, seed) for seed in SEEDS[:-1]] for name in names
        }
        # The standard library's scoped os.environ change; the workers read it when they load torch.
        with mock.patch.dict(os.environ, GOMP_SPINCOUNT=TWO_THREAD_SPINS):
            self.two_threads = self.context.Pool(1, initializer=_run_behind_the_other_tests)
        self.two_threads_queued = threading.Thread(target=self._queue_two_thread_seeds, daemon=True)
        self.two_threads_queued.start()

    def _submit(self, pool: multiprocessing.pool.Pool, name: str, seed: int) -> AsyncResult[TrainResult]:
        threads = 2 if seed == SEEDS[-1] else 1
        spec = TrainSpec.model_validate(
            {"device": "cpu", "checkpoint_interval": 0, "seed": seed, "torch_threads": threads, **RUNS[name]}
        )
        return pool.apply_async(train, (spec, self._folder(name, seed)))

    def _folder(self, name: str, seed: int) -> Path:
        return self.root / name / str(seed)

    def _queue_two_thread_seeds(self) -> None:
        """Once the background is done: the two-thread seed of every run, in the tests' order."""
        self.background.close()
        self.background.join()
        with contextlib.suppress(ValueError):  # "Pool not running": the session ended early
            for run, seeds in self.pending.items():
                seeds.append(self._submit(self.two_threads, run, SEEDS[-1]))

    def results(self, name: str) -> list[TrainResult]:
        self.two_threads_queued.join()
        if name not in self.pending:  # a run that no test declared (see `_runs_read_by`)
            self.pending[name] = [self._submit(self.two_threads, name, seed) for seed in SEEDS]
        return [result.get() for result in self.pending[name]]

    def __call__(self, name: str) -> list[Path]:
        self.results(name)
        return [self._folder(name, seed) for seed in SEEDS]

    def close(self) -> None:
        """Stop the runs still training (when the session ends early) and remove their folders."""
        for pool in (self.background, self.two_threads):
            pool.terminate()
            pool.join()
        shutil.rmtree(self.root, ignore_errors=True)


_TRAINED = pytest.StashKey[TrainedRuns]()


def _reads_trained_runs(item: pytest.Item) -> bool:
    return "trained" in getattr(item, "fixturenames", ())


def _runs_read_by(item: pytest.Item) -> list[str]:
    """The runs a test reads: its `learning_runs` marker's, else its `run` parameter, else all."""
    if (marker := item.get_closest_marker("learning_runs")) is not None:
        return list(marker.args)
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "run" in callspec.params:
        return [callspec.params["run"]]
    return list(RUNS)


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected what they do
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Start the learning runs that the selected tests read, and run those tests last."""
    readers = [item for item in items if _reads_trained_runs(item)]
    if not readers or _TRAINED in config.stash:
        return
    items[:] = [item for item in items if not _reads_trained_runs(item)] + readers
    names = [name for name in RUNS if any(name in _runs_read_by(item) for item in readers)]
    config.stash[_TRAINED] = TrainedRuns(Path(tempfile.mkdtemp(prefix="rlserve-trained-")), names)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _TRAINED in config.stash:
        config.stash[_TRAINED].close()


@pytest.fixture(scope="session")
def trained(pytestconfig: pytest.Config) -> TrainedRuns:
    """The learning runs, started at collection (see TrainedRuns)."""
    return pytestconfig.stash[_TRAINED]


class PixelVectorEnv(VectorEnv):
    """A small Atari-like vector env for tests: uint8 frame stacks, raw rewards, lives.

    Observations are (N, C, H, W) uint8 stacks of the last C frames (a bright square
    that the actions move, on sparse noise), with same-step autoreset and
    `info["final_obs"]` (uint8) where an episode ended. Rewards are raw game points
    (-3, 0, 2, 7), so clipping shows. Each game has `lives` lives, lost at random.
    With `episodic_life` a lost life is a `terminated` and `info["game_over"]` is True
    only where the whole game ended (last life lost, or cut by `max_episode_steps`);
    without it `terminated` is the game's end and there is no `game_over`. `games`
    records every finished game's (score, length), the ground truth for the reports.
    get_state/set_state make a checkpointed run resume exactly.
    """

    metadata: ClassVar[dict[str, Any]] = {"autoreset_mode": AutoresetMode.SAME_STEP}
    REWARDS = np.array([0.0, 0.0, 2.0, -3.0, 7.0])
    _ARRAYS = ("stack", "pos", "lives_left", "game_t", "score")

    def __init__(
        self,
        num_envs: int,
        frame_stack: int = 4,
        size: int = 84,
        lives: int = 1,
        episodic_life: bool = False,
        max_episode_steps: int | None = None,
        life_loss_prob: float = 0.15,
    ) -> None:
        self.num_envs = num_envs
        self.size, self.lives = size, lives
        self.episodic_life, self.max_episode_steps = episodic_life, max_episode_steps
        self.life_loss_prob = life_loss_prob
        self.single_observation_space = spaces.Box(0, 255, (frame_stack, size, size), np.uint8)
        self.single_action_space = spaces.Discrete(6)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.stack = np.zeros((num_envs, frame_stack, size, size), np.uint8)
        self.pos = np.zeros((num_envs, 2), np.int64)
        self.lives_left = np.zeros(num_envs, np.int64)
        self.game_t = np.zeros(num_envs, np.int64)
        self.score = np.zeros(num_envs)
        self.games: list[tuple[float, int]] = []

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple:
        super().reset(seed=seed)
        self._new_games(np.ones(self.num_envs, dtype=bool))
        return self.stack.copy(), {}

    def _new_games(self, rows: np.ndarray) -> None:
        self.pos[rows] = self.np_random.integers(0, self.size - 8, size=(int(rows.sum()), 2))
        self.lives_left[rows] = self.lives
        self.game_t[rows] = 0
        self.score[rows] = 0.0
        self.stack[rows] = 0
        self._push_frame(rows)

    def _push_frame(self, rows: np.ndarray) -> None:
        frames = (self.np_random.random((int(rows.sum()), self.size, self.size)) < 0.02) * np.uint8(90)
        for frame, (x, y) in zip(frames, self.pos[rows], strict=True):
            frame[y : y + 8, x : x + 8] = 255
        self.stack[rows] = np.concatenate([self.stack[rows, 1:], frames[:, None]], axis=1)

    def step(self, actions: np.ndarray) -> tuple:
        actions = np.asarray(actions)
        moves = np.array([[0, 0], [4, 0], [-4, 0], [0, 4], [0, -4], [0, 0]])
        self.pos = np.clip(self.pos + moves[actions], 0, self.size - 8)
        reward = self.REWARDS[self.np_random.integers(0, len(self.REWARDS), size=self.num_envs)]
        self.score += reward
        self.game_t += 1
        lost = self.np_random.random(self.num_envs) < self.life_loss_prob
        self.lives_left -= lost
        game_end = lost & (self.lives_left == 0)
        cut = ~game_end & (self.game_t >= (self.max_episode_steps or np.iinfo(np.int64).max))
        terminated = lost if self.episodic_life else game_end
        truncated = cut
        over = game_end | cut
        self._push_frame(np.ones(self.num_envs, dtype=bool))
        done = terminated | truncated
        info: dict[str, Any] = {
            "final_obs": np.where(done[:, None, None, None], self.stack, 0).astype(np.uint8)
        }
        if self.episodic_life:
            info["game_over"] = over
        for i in np.flatnonzero(over):
            self.games.append((float(self.score[i]), int(self.game_t[i])))
        if over.any():
            self._new_games(over)
        return self.stack.copy(), reward, terminated, truncated, info

    def get_state(self) -> dict[str, Any]:
        arrays = {name: torch.from_numpy(getattr(self, name).copy()) for name in self._ARRAYS}
        return {"kind": "PixelVectorEnv", "arrays": arrays, "rng": self.np_random.bit_generator.state}

    def set_state(self, state: dict[str, Any]) -> None:
        for name, value in state["arrays"].items():
            setattr(self, name, value.numpy().copy())
        self.np_random.bit_generator.state = state["rng"]


@pytest.fixture
def pixel_env() -> Callable[..., PixelVectorEnv]:
    """PixelVectorEnv(num_envs, **options)."""
    return PixelVectorEnv


class ActionRecordingVectorEnv(VectorEnv):
    """A vector env of any action space that records every action batch it is sent.

    Observations (N, 3) are random; each episode lasts 3 to 9 steps, with same-step
    autoreset and `info["final_obs"]`; the reward is the sum of the action's entries,
    so what the env received shows in the rewards too.
    """

    metadata: ClassVar[dict[str, Any]] = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, num_envs: int, action_space: spaces.Space) -> None:
        self.num_envs = num_envs
        self.single_observation_space = spaces.Box(-1.0, 1.0, (3,), np.float32)
        self.single_action_space = action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(action_space, num_envs)
        self.received: list[np.ndarray] = []
        self.t = np.zeros(num_envs, np.int64)
        self.length = np.zeros(num_envs, np.int64)

    def _obs(self) -> np.ndarray:
        return self.np_random.uniform(-1, 1, (self.num_envs, 3)).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple:
        super().reset(seed=seed)
        self.t[:] = 0
        self.length[:] = self.np_random.integers(3, 10, self.num_envs)
        return self._obs(), {}

    def step(self, actions: np.ndarray) -> tuple:
        actions = np.asarray(actions)
        self.received.append(actions.copy())
        self.t += 1
        terminated = self.t >= self.length
        truncated = np.zeros(self.num_envs, dtype=bool)
        reward = actions.reshape(self.num_envs, -1).sum(-1).astype(np.float32)
        obs = self._obs()
        info = {"final_obs": np.where(terminated[:, None], obs, 0.0).astype(np.float32)}
        self.t[terminated] = 0
        self.length[terminated] = self.np_random.integers(3, 10, int(terminated.sum()))
        return obs, reward, terminated, truncated, info


@pytest.fixture
def action_env() -> Callable[..., ActionRecordingVectorEnv]:
    """ActionRecordingVectorEnv(num_envs, action_space)."""
    return ActionRecordingVectorEnv
