"""Evaluation episodes: at their cadence and at the end, on seeds apart from training's,
greedy or sampled, never moving a random stream that training draws from, resumed exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from rlcore.evaluate import eval_seed, run_episodes
from rlcore.run import Run
from rlcore.trainer import train
from tests.rlcore.conftest import RecordingSink, assert_same_points

EVAL = "eval/episodic_return"
# 4 envs x 32 steps: one point per 128 env steps.
SMALL: dict[str, Any] = {"algo": "ppo", "model": "gru", "num_envs": 4, "rollout_length": 32, "epochs": 2}


def eval_steps(sink: RecordingSink) -> list[int]:
    return [step for step, metrics in sink.points if EVAL in metrics]


def test_the_default_spec_evaluates_once_at_the_end(make_spec, sink, tmp_path: Path) -> None:
    spec = make_spec(**SMALL, total_steps=3 * 128)
    assert (spec.eval_interval, spec.eval_episodes, spec.eval_deterministic) == (0, 10, True)
    train(spec, tmp_path, sink=sink)
    assert eval_steps(sink) == [384]
    final = sink.points[-1][1]
    assert final[EVAL] >= 8.0  # CartPole pays 1 per step and no episode is shorter than 8
    assert final["eval/episodic_return_std"] >= 0.0


@pytest.mark.parametrize(
    ("interval", "episodes", "expected"),
    [
        (256, 2, [256, 512, 640]),  # each multiple of 256, and the end
        (300, 2, [384, 640]),  # the updates that pass 300 and 600; 640 is also the end
        (0, 2, [640]),
        (256, 0, []),  # no episodes: no evaluation at all
    ],
)
def test_evaluations_run_when_training_passes_each_multiple_of_the_interval(
    interval: int, episodes: int, expected: list[int], make_spec, sink, tmp_path: Path
) -> None:
    spec = make_spec(**SMALL, total_steps=5 * 128, eval_interval=interval, eval_episodes=episodes)
    train(spec, tmp_path, sink=sink)
    assert eval_steps(sink) == expected
    assert eval_steps(sink) == [s for s, m in sink.points if "eval/episodic_return_std" in m]


def test_evaluation_envs_are_seeded_apart_from_every_training_env(make_spec, tmp_path: Path) -> None:
    # The most envs a spec may train with, against the most an evaluation plays at once.
    spec = make_spec(algo="a2c", model="mlp", seed=7, num_envs=512, rollout_length=1, total_steps=512)
    run = Run(spec, tmp_path)
    try:
        training_starts = run.collector.obs.numpy()
        seen: list[np.ndarray] = []

        def greedy(obs: np.ndarray, starts: np.ndarray) -> np.ndarray:
            seen.append(obs[starts])
            state = run.policy.initial_state(len(obs), run.device)  # mlp: nothing to carry
            with torch.no_grad():
                logits, _, _ = run.policy(torch.as_tensor(obs)[None], state, torch.as_tensor(starts)[None])
            return logits[0].argmax(-1).numpy()

        # What Run.evaluate plays is what these envs play: the same returns, greedily.
        expected = run_episodes(greedy, spec.env_id, 32, eval_seed(spec.seed))
        assert run.evaluate(32) == expected
    finally:
        run.close()
    eval_starts = np.concatenate(seen)
    assert len(eval_starts) >= 32
    # CartPole's first observation is drawn from its seed: no evaluation episode starts
    # where a training env did.
    same = (eval_starts[:, None, :] == training_starts[None, :, :]).all(-1)
    assert not same.any()
    assert eval_seed(spec.seed) > spec.seed + 512 - 1


def test_deterministic_evaluations_repeat_and_sampled_ones_draw_from_their_own_generator(
    make_spec, tmp_path: Path
) -> None:
    greedy = Run(make_spec(**SMALL, total_steps=128), tmp_path / "greedy")
    sampled = Run(make_spec(**SMALL, total_steps=128, eval_deterministic=False), tmp_path / "sampled")
    try:
        first = greedy.evaluate(6)
        torch.manual_seed(123)  # the global stream plays no part in a greedy evaluation
        assert greedy.evaluate(6) == first

        training_rng = torch.get_rng_state()
        once, twice = sampled.evaluate(6), sampled.evaluate(6)
        assert once != twice  # the evaluation generator moved on between them
        assert torch.equal(torch.get_rng_state(), training_rng)  # training's stream did not
        assert once != first  # same weights and envs: only the sampling differs
    finally:
        greedy.close()
        sampled.close()


def test_evaluations_leave_training_exactly_as_it_would_be_without_them(make_spec, tmp_path: Path) -> None:
    base = {**SMALL, "env_id": "CartPoleFlicker-v1", "total_steps": 4 * 128}
    evaluated, plain = RecordingSink(), RecordingSink()
    spec = make_spec(**base, eval_interval=128, eval_episodes=3, eval_deterministic=False)
    train(spec, tmp_path / "evaluated", sink=evaluated)
    train(make_spec(**base, eval_episodes=0), tmp_path / "plain", sink=plain)
    assert eval_steps(evaluated) == [128, 256, 384, 512] and eval_steps(plain) == []
    assert_same_points(evaluated, plain, ignore=("eval/",))
    a = load_file(tmp_path / "evaluated" / "policy.safetensors")
    b = load_file(tmp_path / "plain" / "policy.safetensors")
    for name, tensor in a.items():
        assert torch.equal(b[name], tensor), name


@pytest.mark.parametrize("deterministic", [True, False], ids=["greedy", "sampled"])
def test_a_run_with_evaluations_resumes_exactly(deterministic: bool, make_spec, sink, tmp_path: Path) -> None:
    # Stopped after the update that evaluated at 384 (passing 300): the resumed run must
    # evaluate next at 640 (passing 600) and at the end, with the same sampled actions.
    spec = make_spec(
        **SMALL,
        env_id="CartPoleFlicker-v1",
        total_steps=6 * 128,
        eval_interval=300,
        eval_episodes=3,
        eval_deterministic=deterministic,
    )
    straight = RecordingSink()
    train(spec, tmp_path / "straight", sink=straight)
    train(spec, tmp_path / "resumed", sink=sink, should_stop=lambda: len(sink.points) >= 3)
    assert eval_steps(sink) == [384]
    train(spec, tmp_path / "resumed", sink=sink)
    assert eval_steps(sink) == [384, 640, 768]
    assert_same_points(sink, straight)
