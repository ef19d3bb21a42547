"""Learning checks: the default hyperparameters solve each task on several seeds, with a margin.

The runs and their budgets are in `learning_runs.py`: the defaults were tuned on seeds 0-4;
each budget is at least 1.5x the steps the slowest of those seeds needed, so that another
CPU's rounding cannot flip a result. The last seed of every run trains with
`torch_threads: 2`, a different reduction order, as another machine's would be.
`mean_return` is the mean over the last 100 episodes of the run.

Runs are trained once per session by conftest's `trained` fixture, which the memory
inspector's tests (test_probe.py) share: all of them are queued when the tests are
collected, on a pool of two processes (one per core) at a lower CPU priority, so they
train while the rest of the suite runs; the tests that read them run last.
Slow (about 6 minutes of two cores): `pytest -m slow tests/rlcore`.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.rlcore.conftest import TrainedRuns

pytestmark = pytest.mark.slow


def _per_seed(trained: TrainedRuns, attribute: str) -> Callable[[str], list[float]]:
    """`values(name)`: one TrainResult attribute of RUNS[name] on every seed in SEEDS."""

    def values(name: str) -> list[float]:
        found = [getattr(result, attribute) for result in trained.results(name)]
        assert None not in found, f"{name}: no episode finished"
        return found

    return values


@pytest.fixture
def best(trained: TrainedRuns) -> Callable[[str], list[float]]:
    """`best(name)`: the best last-100 mean return that RUNS[name] reached on every seed."""
    return _per_seed(trained, "best_return")


@pytest.fixture
def runs(trained: TrainedRuns) -> Callable[[str], list[float]]:
    """`runs(name)`: the final last-100 mean return of RUNS[name] on every seed in SEEDS
    (trained once per session by the `trained` fixture)."""
    return _per_seed(trained, "mean_return")


@pytest.mark.parametrize("run", ["reinforce-mlp", "reinforce-gru_cell", "reinforce-gru"])
def test_reinforce_solves_cartpole_v0(run: str, runs) -> None:  # type: ignore[no-untyped-def]
    returns = runs(run)
    assert min(returns) >= 195, returns


@pytest.mark.parametrize("run", ["ppo-gru-v1", "ppo-lstm-v1"])
def test_ppo_solves_cartpole_v1(run: str, runs, best) -> None:  # type: ignore[no-untyped-def]
    # Solved (475) within the budget, and still near it at the end: at 475 the last-100 mean
    # is 25 short of the ceiling, so the end of a solved run wobbles across it with rounding.
    reached, returns = best(run), runs(run)
    assert min(reached) >= 475, reached
    assert min(returns) >= 400, returns


@pytest.mark.parametrize("run", ["ppo-gru-masked"])
def test_ppo_gru_balances_masked_cartpole(run: str, runs, best) -> None:  # type: ignore[no-untyped-def]
    # Far above what a policy without memory reaches (test below: under 100), and still
    # there at the end: PPO on masked CartPole dips mid-run (see learning_runs.py), so the
    # final mean is held to less than the best.
    reached, returns = best(run), runs(run)
    assert min(reached) >= 250, reached
    assert min(returns) >= 150, returns


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
    assert min(returns) >= -700, returns
