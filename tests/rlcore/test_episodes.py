"""REINFORCE's whole episodes: every step of every finished episode is trained exactly once."""

from __future__ import annotations

from pathlib import Path

import torch

from rlcore.episodes import EpisodeCollector, pack_episodes
from rlcore.run import Run


def test_every_finished_step_enters_one_batch_whole(make_spec, tmp_path: Path) -> None:
    spec = make_spec(algo="reinforce", model="gru", env_id="CartPole-v1", num_envs=3, rollout_length=20)
    collector = Run(spec, tmp_path).collector
    assert isinstance(collector, EpisodeCollector)

    trained = 0
    for version in range(5):
        batch = collector.collect_episodes(60)
        assert batch.version == version and batch.steps >= 60
        # The episodes handed out are exactly the ones that ended, each whole.
        assert sorted(e.length for e in batch.episodes) == sorted(e.length for e in batch.finished)
        assert sorted(float(e.rewards.sum()) for e in batch.episodes) == sorted(e.ret for e in batch.finished)
        packed = pack_episodes(batch, torch.zeros(1, *collector.policy.state_shape), gamma=0.99)
        assert int(packed.mask.sum()) == batch.steps
        assert int(packed.episode_starts.sum()) == int(packed.dones.sum()) == len(batch.episodes)
        trained += batch.steps

    still_open = sum(len(torch.cat(parts["actions"])) for parts in collector._open if parts["actions"])
    assert trained + still_open == collector.global_step, "a step was lost or trained twice"
    assert any(e.version < 4 for e in batch.episodes), "no episode waited across an update"


def test_packed_returns_stay_inside_their_episode(make_spec, tmp_path: Path) -> None:
    spec = make_spec(algo="reinforce", model="mlp", env_id="CartPole-v1", num_envs=2, rollout_length=40)
    collector = Run(spec, tmp_path).collector
    batch = collector.collect_episodes(80)
    packed = pack_episodes(batch, torch.zeros(1, *collector.policy.state_shape), gamma=0.5)
    for episode in batch.episodes:
        expected = torch.zeros(episode.length)
        future = 0.0
        for t in reversed(range(episode.length)):
            future = float(episode.rewards[t]) + 0.5 * future
            expected[t] = future
        starts = torch.nonzero(packed.episode_starts.T.reshape(-1)).flatten()
        flat_returns = packed.returns.T.reshape(-1)
        assert any(torch.allclose(flat_returns[s : s + episode.length], expected) for s in starts.tolist())


def test_resume_keeps_the_episodes_waiting_for_their_end(make_spec, sink, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from rlcore.trainer import train

    spec = make_spec(
        algo="reinforce",
        model="lstm",
        env_id="CartPoleFlicker-v1",
        num_envs=3,
        rollout_length=40,
        total_steps=1200,
    )
    train(spec, tmp_path / "straight")
    train(spec, tmp_path / "resumed", sink=sink, should_stop=lambda: len(sink.points) >= 2)
    train(spec, tmp_path / "resumed", sink=sink)
    straight = load_file(tmp_path / "straight" / "policy.safetensors")
    resumed = load_file(tmp_path / "resumed" / "policy.safetensors")
    for name, tensor in straight.items():
        torch.testing.assert_close(resumed[name], tensor, atol=1e-6, rtol=0)


def test_time_baseline_is_the_mean_return_at_each_step(make_spec, tmp_path: Path) -> None:
    from rlcore.algos.reinforce import time_baseline
    from rlcore.episodes import EpisodeBatch, EpisodeSteps

    def episode(rewards: list[float]) -> EpisodeSteps:
        n = len(rewards)
        return EpisodeSteps(
            torch.zeros(n, 4), torch.zeros(n, dtype=torch.long), torch.zeros(n), torch.tensor(rewards), 0
        )

    # gamma 1: returns [3, 2, 1] and [1]; step 0's mean is 2, steps 1 and 2 have one episode each.
    batch = EpisodeBatch([episode([1.0, 1.0, 1.0]), episode([1.0])], [], 0)
    packed = pack_episodes(batch, torch.zeros(1, 0), gamma=1.0)
    advantages = (packed.returns - time_baseline(packed))[packed.mask.bool()]
    assert sorted(advantages.tolist()) == [-1.0, 0.0, 0.0, 1.0]
