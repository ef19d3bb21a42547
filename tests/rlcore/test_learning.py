"""Learning checks: the default hyperparameters solve each task on several seeds, with a margin.

The defaults were tuned on seeds 0-4; each budget is at least 1.5x the steps the slowest of
those seeds needed (see the comments), so that another CPU's rounding cannot flip a result.
The last seed of every run trains with `torch_threads: 2`, a different reduction order, as
another machine's would be. `mean_return` is the mean over the last 100 episodes of the run.

The first seeds of a test run side by side on a pool of two processes (one per core);
the last, with its two threads, runs alone.
Slow (about 5 minutes on 2 idle cores): `pytest -m slow tests/rlcore`.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from rlcore.spec import TrainSpec
from rlcore.trainer import TrainResult, train

pytestmark = pytest.mark.slow

SEEDS = (0, 1, 2)

# name -> spec, in the order the tests below use them (the pool runs them in this order).
RUNS: dict[str, dict[str, Any]] = {
    # The forum thread's task. Seeds 0-4 reached 195 after 69k-124k steps (gru_cell's seed 4
    # the slowest) and ended at 199.8-200.
    **{
        f"reinforce-{model}": {
            "algo": "reinforce",
            "model": model,
            "env_id": "CartPole-v0",
            "total_steps": 200_000,
        }
        for model in ("mlp", "gru_cell", "gru")
    },
    # Seeds 0-4 reached 475 after 92k-127k steps (gru) and 82k-109k (lstm), and ended at 491-500.
    **{
        f"ppo-{model}-v1": {"algo": "ppo", "model": model, "env_id": "CartPole-v1", "total_steps": 200_000}
        for model in ("gru", "lstm")
    },
    # Velocities hidden: seeds 0-4 reached 400 after 92k-273k steps and ended at 461-500.
    # (lstm reached 400 after 175k-227k on seeds 0-4 but ended under it on seed 3: its
    # memory is checked on CueRecall and CartPole-v1 here.)
    "ppo-gru-masked": {"algo": "ppo", "model": "gru", "env_id": "CartPoleMasked-v1", "total_steps": 420_000},
    # Seeds 0-4 ended at 44-50: without velocities a feed-forward policy stays far below.
    "ppo-mlp-masked": {"algo": "ppo", "model": "mlp", "env_id": "CartPoleMasked-v1", "total_steps": 150_000},
    # Seeds 0-4 solved it (>= 0.9) after 10k-14k steps (gru) and 12k-20k (lstm), ending at 1.0;
    # without memory the cue is gone at the query step and the expected return is 0.
    **{
        f"ppo-{model}-cue": {"algo": "ppo", "model": model, "env_id": "CueRecall-v0", "total_steps": 40_000}
        for model in ("gru", "lstm", "mlp")
    },
    # The same task drawn as 36x36 frames, through the CNN: seeds 0-4 passed 0.9 after
    # 5k-6k steps (gru) and ended at 0.98-1.0; mlp ended at -0.04-0.0 on seeds 0-1.
    "ppo-gru-cue-pixels": {
        "algo": "ppo",
        "model": "gru",
        "env_id": "CueRecallPixels-v0",
        "total_steps": 15_000,
    },
    "ppo-mlp-cue-pixels": {
        "algo": "ppo",
        "model": "mlp",
        "env_id": "CueRecallPixels-v0",
        "total_steps": 10_000,
    },
    # POPGym's RepeatPreviousEasy (say the card seen a few steps ago; returns in [-1, 1],
    # chance -0.5): seeds 0-4 passed 0.0 within 30k steps (gru) and ended at 0.3-0.5 after
    # 50k; mlp stayed at -0.5.
    **{
        f"ppo-{model}-repeat-previous": {
            "algo": "ppo",
            "model": model,
            "env_id": "popgym/RepeatPreviousEasy",
            "total_steps": 50_000,
        }
        for model in ("gru", "mlp")
    },
    # Pendulum without its angular velocity, Gaussian actions (random policy about -1200):
    # seeds 0-4 ended at -328 to -542 after 100k steps and -264 to -324 after 150k.
    "ppo-gru-masked-pendulum": {
        "algo": "ppo",
        "model": "gru",
        "env_id": "PendulumMasked-v1",
        "total_steps": 200_000,
    },
}


@pytest.fixture
def runs(
    training_pool: ProcessPoolExecutor, make_spec: Callable[..., TrainSpec], tmp_path: Path
) -> Callable[[str], list[float]]:
    """`runs(name)`: train RUNS[name] on every seed in SEEDS; the final last-100 mean return of each.

    The first seeds run side by side, one per core, and the last one, with its two torch
    threads, alone: beside another run its threads would compete with that run for the cores.
    """

    def train_seeds(name: str) -> list[float]:
        futures: list[Future[TrainResult]] = [
            training_pool.submit(
                train,
                make_spec(seed=seed, torch_threads=1, **RUNS[name]),
                tmp_path / str(seed),
            )
            for seed in SEEDS[:-1]
        ]
        returns = [future.result().mean_return for future in futures]
        last = training_pool.submit(
            train, make_spec(seed=SEEDS[-1], torch_threads=2, **RUNS[name]), tmp_path / str(SEEDS[-1])
        )
        returns.append(last.result().mean_return)
        assert None not in returns, f"{name}: no episode finished"
        return returns  # type: ignore[return-value]

    return train_seeds


@pytest.mark.parametrize("run", ["reinforce-mlp", "reinforce-gru_cell", "reinforce-gru"])
def test_reinforce_solves_cartpole_v0(run: str, runs) -> None:  # type: ignore[no-untyped-def]
    returns = runs(run)
    assert min(returns) >= 195, returns


@pytest.mark.parametrize("run", ["ppo-gru-v1", "ppo-lstm-v1"])
def test_ppo_solves_cartpole_v1(run: str, runs) -> None:  # type: ignore[no-untyped-def]
    returns = runs(run)
    assert min(returns) >= 475, returns


@pytest.mark.parametrize("run", ["ppo-gru-masked"])
def test_ppo_gru_solves_masked_cartpole(run: str, runs) -> None:  # type: ignore[no-untyped-def]
    returns = runs(run)
    assert min(returns) >= 400, returns


@pytest.mark.parametrize("run", ["ppo-mlp-masked"])
def test_ppo_mlp_cannot_balance_masked_cartpole(run: str, runs) -> None:  # type: ignore[no-untyped-def]
    returns = runs(run)
    assert max(returns) < 100, returns


@pytest.mark.parametrize("run", ["ppo-gru-cue", "ppo-lstm-cue"])
def test_memory_models_solve_cue_recall(run: str, runs) -> None:  # type: ignore[no-untyped-def]
    returns = runs(run)
    assert min(returns) >= 0.9, returns


@pytest.mark.parametrize("run", ["ppo-mlp-cue"])
def test_mlp_cannot_solve_cue_recall(run: str, runs) -> None:  # type: ignore[no-untyped-def]
    returns = runs(run)
    assert max(returns) < 0.5, returns


@pytest.mark.parametrize("run", ["ppo-gru-cue-pixels"])
def test_cnn_with_memory_solves_cue_recall_from_pixels(run: str, runs) -> None:  # type: ignore[no-untyped-def]
    returns = runs(run)
    assert min(returns) >= 0.9, returns


@pytest.mark.parametrize("run", ["ppo-mlp-cue-pixels"])
def test_cnn_without_memory_cannot_solve_cue_recall_from_pixels(run: str, runs) -> None:  # type: ignore[no-untyped-def]
    returns = runs(run)
    assert max(returns) < 0.5, returns


@pytest.mark.parametrize("run", ["ppo-gru-repeat-previous"])
def test_gru_recalls_the_previous_card(run: str, runs) -> None:  # type: ignore[no-untyped-def]
    returns = runs(run)
    assert min(returns) >= 0.0, returns


@pytest.mark.parametrize("run", ["ppo-mlp-repeat-previous"])
def test_mlp_cannot_recall_the_previous_card(run: str, runs) -> None:  # type: ignore[no-untyped-def]
    returns = runs(run)
    assert max(returns) < -0.3, returns


@pytest.mark.parametrize("run", ["ppo-gru-masked-pendulum"])
def test_ppo_gru_swings_up_the_masked_pendulum(run: str, runs) -> None:  # type: ignore[no-untyped-def]
    returns = runs(run)
    assert min(returns) >= -500, returns
