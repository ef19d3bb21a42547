"""Rollouts in vectorised envs: state reset at episode starts, carried across rollouts."""

from __future__ import annotations

import pytest
import torch

from rlcore import distributions
from rlcore.envs import make_vec_env
from rlcore.models import build_policy, policy_config
from rlcore.returns import discounted_returns, gae
from rlcore.rollout import RolloutCollector


def collector(model: str, num_envs: int = 6) -> RolloutCollector:
    torch.manual_seed(0)
    envs = make_vec_env("CartPole-v1", num_envs, seed=3)
    policy = build_policy(policy_config(model, (4,), 2, 16, 1, 4))
    return RolloutCollector(envs, policy, torch.device("cpu"), seed=3)


def test_episodes_end_at_different_steps_and_state_is_reset_there() -> None:
    c = collector("gru")
    rollout = c.collect(64)
    starts = rollout.episode_starts
    assert starts[1:].any(), "random CartPole episodes end within 64 steps"
    first_start_step = {int(torch.nonzero(starts[1:, n])[0]) for n in range(6) if starts[1:, n].any()}
    assert len(first_start_step) > 1, "envs should finish episodes at different steps"

    # At every episode start the policy acted from a zero state: recompute those steps
    # from a fresh state and compare with the log-probs stored while acting.
    t, n = torch.nonzero(starts, as_tuple=True)
    logits, _, _ = c.policy(
        rollout.obs[t, n][None], c.policy.initial_state(len(t)), torch.zeros(1, len(t), dtype=torch.bool)
    )
    fresh = distributions.log_prob(logits[0], rollout.actions[t, n])
    torch.testing.assert_close(fresh, rollout.logprobs[t, n], atol=1e-6, rtol=0)
    # ...and elsewhere the stored state is not zero: memory is carried within episodes.
    assert rollout.states[~starts].abs().sum() > 0


def test_state_is_carried_across_rollouts() -> None:
    c = collector("lstm")
    first = c.collect(10)
    second = c.collect(10)
    assert not second.episode_starts[0].all()
    carried = ~second.episode_starts[0]
    assert second.states[0][carried].abs().sum() > 0
    assert first.episode_starts[0].all()


def test_replayed_chunks_reproduce_acting_log_probs() -> None:
    for model in ["gru", "lstm", "window"]:
        c = collector(model)
        c.collect(7)  # start mid-episode, so chunks begin from carried states
        rollout = c.collect(40)
        zeros = torch.zeros_like(rollout.rewards)
        batch = rollout.sequences(zeros, zeros, chunk_length=12)  # 40 = 3 x 12 + padding
        logits, _, _ = c.policy(batch.obs, batch.initial_states, batch.episode_starts)
        replayed = distributions.log_prob(logits, batch.actions)
        diff = (replayed - batch.logprobs).abs() * batch.mask
        assert diff.max() < 1e-5, model
        assert batch.mask.sum() == 40 * 6


def test_only_chunk_start_states_are_stored_and_they_replay_exactly() -> None:
    for model in ["gru", "lstm", "window"]:
        every_step = collector(model)
        every_step.collect(7)
        full = every_step.collect(40, chunk_length=1)
        chunk_starts = collector(model)
        chunk_starts.collect(7)
        rollout = chunk_starts.collect(40, chunk_length=12)

        # The same seeds give the same steps; only the states at steps 0, 12, 24, 36 are kept.
        torch.testing.assert_close(rollout.actions, full.actions, atol=0, rtol=0)
        assert rollout.states.shape == (4, 6, *chunk_starts.policy.state_shape), model
        torch.testing.assert_close(rollout.states, full.states[::12], atol=0, rtol=0)
        assert rollout.states.abs().sum() > 0, "chunks start from carried states"

        zeros = torch.zeros_like(rollout.rewards)
        batch = rollout.sequences(zeros, zeros, chunk_length=12)
        torch.testing.assert_close(
            batch.initial_states, full.sequences(zeros, zeros, 12).initial_states, atol=0, rtol=0
        )
        logits, _, _ = chunk_starts.policy(batch.obs, batch.initial_states, batch.episode_starts)
        replayed = distributions.log_prob(logits, batch.actions)
        assert ((replayed - batch.logprobs).abs() * batch.mask).max() < 1e-5, model
        # Chunks of 24 start at stored states too; chunks of 8 would not.
        assert rollout.sequences(zeros, zeros, 24).initial_states.shape[0] == 2 * 6
        with pytest.raises(ValueError, match="chunk_length=8"):
            rollout.sequences(zeros, zeros, 8)


def test_collecting_without_states_keeps_none() -> None:
    rollout = collector("lstm").collect(10, chunk_length=None)
    assert rollout.states is None and rollout.episode_starts.shape == (10, 6)
    zeros = torch.zeros_like(rollout.rewards)
    with pytest.raises(ValueError, match="kept no states"):
        rollout.sequences(zeros, zeros, 10)


def test_monte_carlo_returns_stop_at_episode_ends() -> None:
    rewards = torch.ones(5, 1)
    dones = torch.tensor([[False], [True], [False], [False], [False]])
    returns, complete = discounted_returns(rewards, dones, gamma=0.5)
    assert returns[:, 0].tolist() == [1.5, 1.0, 1.75, 1.5, 1.0]
    assert complete[:, 0].tolist() == [True, True, False, False, False]


def test_gae_bootstraps_truncation_but_not_termination() -> None:
    rewards = torch.zeros(2, 2)
    values = torch.zeros(2, 2)
    dones = torch.tensor([[True, True], [False, False]])
    truncation_values = torch.tensor([[0.0, 10.0], [0.0, 0.0]])  # env 1 was cut by a time limit
    adv, _ = gae(rewards, values, dones, truncation_values, torch.zeros(2), gamma=0.9, lam=1.0)
    assert adv[0].tolist() == [0.0, 9.0]
