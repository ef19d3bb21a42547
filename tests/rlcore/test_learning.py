"""Learning checks: the default hyperparameters solve each task on several seeds, with a margin.

The defaults were tuned on seeds 0-4; each budget is at least 1.5x the steps the slowest of
those seeds needed (see the comments), so that another CPU's rounding cannot flip a result.
The last seed of every test trains with `torch_threads: 2`, a different reduction order, as
another machine's would be. Seeds run two at a time, one per core. `mean_return` is the mean
over the last 100 episodes of the run. Slow (about 5 minutes on 2 idle cores): `pytest -m slow tests/rlcore`.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from rlcore.trainer import train

pytestmark = pytest.mark.slow

SEEDS = (0, 1, 2)


def mean_returns(pool: ProcessPoolExecutor, make_spec, path: Path, **spec: Any) -> list[float]:
    """The final last-100 mean return of each seed in SEEDS."""
    runs = [
        pool.submit(
            train, make_spec(seed=seed, torch_threads=1 if seed != SEEDS[-1] else 2, **spec), path / str(seed)
        )
        for seed in SEEDS
    ]
    returns = [run.result().mean_return for run in runs]
    assert None not in returns, "no episode finished"
    return returns


@pytest.mark.parametrize("model", ["mlp", "gru_cell", "gru"])
def test_reinforce_solves_cartpole_v0(model, training_pool, make_spec, tmp_path) -> None:
    # The forum thread's task. Seeds 0-4 reached 195 after 69k-124k steps (gru_cell's seed 4
    # the slowest) and ended at 199.8-200.
    returns = mean_returns(
        training_pool,
        make_spec,
        tmp_path,
        algo="reinforce",
        model=model,
        env_id="CartPole-v0",
        total_steps=200_000,
    )
    assert min(returns) >= 195, returns


@pytest.mark.parametrize("model", ["gru", "lstm"])
def test_ppo_solves_cartpole_v1(model, training_pool, make_spec, tmp_path) -> None:
    # Seeds 0-4 reached 475 after 92k-127k steps (gru) and 82k-109k (lstm), and ended at
    # 491-500.
    returns = mean_returns(
        training_pool, make_spec, tmp_path, algo="ppo", model=model, env_id="CartPole-v1", total_steps=200_000
    )
    assert min(returns) >= 475, returns


def test_ppo_gru_solves_masked_cartpole(training_pool, make_spec, tmp_path) -> None:
    # Velocities hidden: seeds 0-4 reached 400 after 92k-273k steps and ended at 461-500.
    # (lstm reached 400 after 175k-227k on seeds 0-4 but ended under it on seed 3: its
    # memory is checked on CueRecall and CartPole-v1 here.)
    returns = mean_returns(
        training_pool,
        make_spec,
        tmp_path,
        algo="ppo",
        model="gru",
        env_id="CartPoleMasked-v1",
        total_steps=420_000,
    )
    assert min(returns) >= 400, returns


def test_ppo_mlp_cannot_balance_masked_cartpole(training_pool, make_spec, tmp_path) -> None:
    # Without velocities a feed-forward policy stays far below what memory reaches.
    returns = mean_returns(
        training_pool,
        make_spec,
        tmp_path,
        algo="ppo",
        model="mlp",
        env_id="CartPoleMasked-v1",
        total_steps=150_000,
    )
    assert max(returns) < 100, returns  # seeds 0-4 ended at 44-50


@pytest.mark.parametrize("model", ["gru", "lstm"])
def test_memory_models_solve_cue_recall(model, training_pool, make_spec, tmp_path) -> None:
    # Seeds 0-4 solved it (>= 0.9) after 10k-14k steps (gru) and 12k-20k (lstm), ending at 1.0.
    returns = mean_returns(
        training_pool,
        make_spec,
        tmp_path,
        algo="ppo",
        model=model,
        env_id="CueRecall-v0",
        total_steps=40_000,
    )
    assert min(returns) >= 0.9, returns


def test_mlp_cannot_solve_cue_recall(training_pool, make_spec, tmp_path) -> None:
    # Without memory the cue is gone at the query step: the expected return is 0.
    returns = mean_returns(
        training_pool,
        make_spec,
        tmp_path,
        algo="ppo",
        model="mlp",
        env_id="CueRecall-v0",
        total_steps=40_000,
    )
    assert max(returns) < 0.5, returns
