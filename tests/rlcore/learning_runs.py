"""The training runs the learning tests (and the memory-inspector tests) train: specs and seeds.

The defaults were tuned on seeds 0-4; each budget is at least 1.5x the steps the slowest of
those seeds needed (lstm on CartPole-v1: 1.35x; see the comments), so that another CPU's
rounding cannot flip a result.
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
    # Seeds 0-4 reached 475 after 94k-177k steps (gru) and 144k-222k (lstm), one thread or
    # two, and ended at 481-500. The lstm margin is 1.35x, under the 1.5x of the others: a
    # longer budget anneals the learning rate later and moves the steps to 475 with it (with
    # 240k they were 155k-195k; 200k was too short for seed 2 with two threads, at 448).
    # Solved runs wobble near the ceiling, so the test asks for 475 reached and a final mean
    # of at least 400.
    **{
        f"ppo-{model}-v1": {"algo": "ppo", "model": model, "env_id": "CartPole-v1", "total_steps": 300_000}
        for model in ("gru", "lstm")
    },
    # Velocities hidden (mlp ends near 50): with 240k steps (the learning rate annealed over
    # them) and normalised observations, seeds 0-4 passed 250 after 44k-94k steps, reached a
    # best last-100 mean of 470-500 and ended at 372-500. Before observations were normalised
    # by default they reached 349-500 and ended at 228-500: runs dipped mid-way, which is
    # why the test holds the final mean to less than the best.
    "ppo-gru-masked": {"algo": "ppo", "model": "gru", "env_id": "CartPoleMasked-v1", "total_steps": 240_000},
    # Seeds 0-4 ended at 44-50: without velocities a feed-forward policy stays far below.
    "ppo-mlp-masked": {"algo": "ppo", "model": "mlp", "env_id": "CartPoleMasked-v1", "total_steps": 150_000},
    # Seeds 0-4 solved it (>= 0.9) after 7k-9k steps (gru) and 9k-12k (lstm), ending at
    # 0.98-1.0; without memory the cue is gone at the query step and the expected return is 0
    # (mlp ended at -0.14 to 0.18).
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
    # chance -0.5): seeds 0-4 passed 0.0 after 20k-24k steps (gru) and ended at 0.27-0.60
    # after 50k; mlp stayed at -0.5.
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
    # with this 160k budget seeds 0-4 ended at -317 to -497 (mlp: -1120): the threshold,
    # -700, leaves room.
    "ppo-gru-masked-pendulum": {
        "algo": "ppo",
        "model": "gru",
        "env_id": "PendulumMasked-v1",
        "total_steps": 160_000,
    },
}
