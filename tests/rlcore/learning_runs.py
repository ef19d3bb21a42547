"""The training runs the learning tests (and the memory-inspector tests) train: specs and seeds.

The defaults were tuned on seeds 0-4; each budget is at least 1.5x the steps the slowest of
those seeds needed (see the comments), so that another CPU's rounding cannot flip a result.
Every PPO run with discrete actions was trained again on seeds 0-4 when PPO's loss was
compiled (it rounds differently): each stayed inside the ranges given below unless a
comment gives its new range.
"""

from __future__ import annotations

from typing import Any

SEEDS = (0, 1, 2)

# name -> spec, in the order test_learning.py uses them.
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
    # With the compiled PPO loss (its rounding differs from the Python loss's), seeds 0-4
    # reached 475 after 101k-127k steps (gru, 200k budget) and ended at 500; lstm at 200k took
    # 93k-169k (seed 4 the slow one), so it gets 260k, with which seeds 0-4 reached 475 after
    # 95k-119k and ended at 497-500. Solved runs wobble near the ceiling: lstm seed 2 with 2
    # threads reached 500 and ended at 461 on one host, so the test asks for 475 reached and a
    # final mean of at least 400.
    "ppo-gru-v1": {"algo": "ppo", "model": "gru", "env_id": "CartPole-v1", "total_steps": 200_000},
    "ppo-lstm-v1": {"algo": "ppo", "model": "lstm", "env_id": "CartPole-v1", "total_steps": 260_000},
    # Velocities hidden (mlp ends near 50), observations normalised (this env's PPO
    # default): with 240k steps (the learning rate annealed over them) seeds 0-4 passed 250
    # after 44k-94k steps, reached a best last-100 mean of 470-500 and ended at 372-500; with
    # two threads they reached 448-500 and ended at 176-500 (seed 1 fell from 449 to 176).
    # Before observations were normalised they reached 349-500 and ended at 228-500. Runs
    # dip mid-way, which is why the test holds the final mean to less than the best.
    # Unseen seeds 5-22 (one thread): best 446-500, final 163-500 (seed 12 fell from 500).
    # With the compiled loss seeds 0-4 passed 250 after 42k-89k steps and ended at 408-500.
    "ppo-gru-masked": {"algo": "ppo", "model": "gru", "env_id": "CartPoleMasked-v1", "total_steps": 240_000},
    # Seeds 0-4 ended at 44-48: without velocities a feed-forward policy stays far below.
    "ppo-mlp-masked": {"algo": "ppo", "model": "mlp", "env_id": "CartPoleMasked-v1", "total_steps": 150_000},
    # Seeds 0-4 solved it (>= 0.9) after 10k-14k steps (gru) and 12k-20k (lstm), ending at 1.0,
    # but lstm has a long tail: at 80k, seeds 0-29 solved it after 7k-13k (gru) and 7k-51k
    # (lstm; seeds 11 and 22 took 51k and 35k, and at 40k, where the annealed learning rate
    # is near zero by then, ended at 0.04 and 0.4). Hence 100k, twice the slowest seen.
    **{
        f"ppo-{model}-cue": {"algo": "ppo", "model": model, "env_id": "CueRecall-v0", "total_steps": 100_000}
        for model in ("gru", "lstm")
    },
    # Without memory the cue is gone at the query step and the expected return is 0.
    "ppo-mlp-cue": {"algo": "ppo", "model": "mlp", "env_id": "CueRecall-v0", "total_steps": 40_000},
    # The same task drawn as 36x36 frames, through the CNN: seeds 0-4 passed 0.9 after
    # 5k-6k steps (gru) and ended at 0.98-1.0; mlp ended at -0.04-0.0 on seeds 0-1 (at
    # -0.16-0.03 on seeds 0-4 with the compiled loss).
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
    # 50k (unseen seeds 5-12: 0.23-0.57); mlp stayed at -0.5.
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
    # seeds 0-4 ended at -328 to -542 after 100k steps and -264 to -324 after 150k (mlp: -1120),
    # but with this 160k budget seed 1 ended at -518: the threshold, -700, leaves room
    # (unseen seeds 5-12 ended at -272 to -514).
    "ppo-gru-masked-pendulum": {
        "algo": "ppo",
        "model": "gru",
        "env_id": "PendulumMasked-v1",
        "total_steps": 160_000,
    },
}
