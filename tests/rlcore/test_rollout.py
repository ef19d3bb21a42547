"""Rollouts in vectorised envs: state reset at episode starts, carried across rollouts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from rlcore import distributions
from rlcore.distributions import action_spec_of
from rlcore.envs import make_vec_env
from rlcore.episodes import EpisodeCollector, pack_episodes
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


# --- pixel envs (Atari-like): uint8 frames, clipped rewards, lives ------------------


def pixel_collector(envs, model: str = "gru", seed: int = 3, **options) -> RolloutCollector:
    torch.manual_seed(0)
    policy = build_policy(policy_config(model, envs.single_observation_space.shape, 6, 16, 1, 4))
    return RolloutCollector(envs, policy, torch.device("cpu"), seed=seed, **options)


def test_pixel_observations_are_stored_as_uint8(pixel_env) -> None:
    n, steps = 3, 10
    c = pixel_collector(pixel_env(n))
    rollout = c.collect(steps, chunk_length=5)
    assert rollout.obs.dtype == torch.uint8 and rollout.obs.shape == (steps, n, 4, 84, 84)
    measured = rollout.obs.numel() * rollout.obs.element_size()
    assert measured == n * steps * 4 * 84 * 84  # a byte a pixel ...
    float32 = torch.zeros(rollout.obs.shape).numel() * 4
    assert float32 == 4 * measured  # ... a quarter of float32 frames
    assert rollout.obs.float().std() > 10, "real frames, not zeros"
    # The chunks and minibatches the update replays stay uint8 too.
    zeros = torch.zeros_like(rollout.rewards)
    batch = rollout.sequences(zeros, zeros, chunk_length=5)
    assert batch.obs.dtype == torch.uint8
    assert all(mb.obs.dtype == torch.uint8 for mb in batch.minibatches(2))


def test_pixel_chunks_replay_the_acting_log_probs(pixel_env) -> None:
    for model in ["gru", "lstm"]:
        c = pixel_collector(pixel_env(3, frame_stack=1, size=36, lives=2, max_episode_steps=6), model)
        c.collect(5)
        rollout = c.collect(24, chunk_length=8)
        assert rollout.episode_starts[1:].any(), "episodes end inside the chunks"
        zeros = torch.zeros_like(rollout.rewards)
        batch = rollout.sequences(zeros, zeros, chunk_length=8)
        logits, _, _ = c.policy(batch.obs, batch.initial_states, batch.episode_starts)
        replayed = distributions.log_prob(logits, batch.actions)
        assert ((replayed - batch.logprobs).abs() * batch.mask).max() < 1e-5, model


def test_truncated_pixel_episodes_bootstrap_from_their_uint8_final_frames(pixel_env) -> None:
    envs = pixel_env(3, frame_stack=1, size=36, max_episode_steps=4, life_loss_prob=0.0)
    rollout = pixel_collector(envs).collect(9)
    cut = rollout.dones  # no life is ever lost: only the time limit ends episodes
    assert cut[3].all() and cut[7].all() and cut.sum() == 6  # every 4 steps, by the time limit
    assert (rollout.truncation_values[cut] != 0).all() and (rollout.truncation_values[~cut] == 0).all()


def test_clipped_rewards_train_while_episodes_report_the_raw_score(pixel_env) -> None:
    # Built (which seeds torch's sampler) and run one after the other: the same steps.
    a = pixel_collector(pixel_env(4, frame_stack=1, size=36, lives=1)).collect(40)
    clipped = pixel_collector(pixel_env(4, frame_stack=1, size=36, lives=1), clip_rewards=True)
    b = clipped.collect(40)
    torch.testing.assert_close(b.actions, a.actions, atol=0, rtol=0)  # clipping changes no step
    assert a.rewards.abs().max() > 1, "the game's rewards are larger than 1"
    torch.testing.assert_close(b.rewards, torch.sign(a.rewards), atol=0, rtol=0)
    assert b.episodes == a.episodes and len(a.episodes) > 3
    # The reported returns are the unclipped game scores, not the sums of clipped rewards.
    assert [(e.ret, e.length) for e in b.episodes] == clipped.envs.games
    clipped_sums = sorted(episode_sums(b.rewards, b.dones))
    assert sorted(e.ret for e in b.episodes) == sorted(episode_sums(a.rewards, a.dones)) != clipped_sums


def episode_sums(rewards: torch.Tensor, dones: torch.Tensor) -> list[float]:
    """The reward sum of every episode that ended in a rollout collected from a reset."""
    sums = []
    for env in range(rewards.shape[1]):
        start = 0
        for end in np.flatnonzero(dones[:, env].numpy()) + 1:
            sums.append(float(rewards[start:end, env].sum()))
            start = end
    return sums


def test_episodes_are_whole_games_when_the_env_reports_game_over(pixel_env) -> None:
    envs = pixel_env(4, frame_stack=1, size=36, lives=3, episodic_life=True, max_episode_steps=30)
    c = pixel_collector(envs, clip_rewards=True)
    rollout = c.collect(60)
    games = envs.games
    assert len(games) >= 4
    # A lost life ends a training episode (the state resets, nothing is bootstrapped) ...
    assert rollout.dones.sum() > len(games)
    # ... but the reports are the games: every life's raw score and steps, summed.
    assert [(e.ret, e.length) for e in rollout.episodes] == games
    assert any(length > 30 / 3 for _, length in games), "games outlast a life"
    assert any(length == 30 for _, length in games), "a time limit also ends a game"

    # Without game_over, every terminated|truncated is an episode, as before.
    plain = pixel_collector(pixel_env(4, frame_stack=1, size=36, lives=1, episodic_life=False))
    rollout = plain.collect(60)
    assert len(rollout.episodes) == int(rollout.dones.sum()) == len(plain.envs.games)


def test_a_cnn_gru_collector_resumes_exactly_from_a_checkpoint(pixel_env, tmp_path) -> None:
    def make() -> RolloutCollector:
        return pixel_collector(
            pixel_env(3, lives=2, episodic_life=True, max_episode_steps=9), clip_rewards=True
        )

    first = make()
    first.collect(7, chunk_length=7)
    path = tmp_path / "collector.pt"
    torch.save({"collector": first.state_dict(), "rng": torch.get_rng_state()}, path)
    straight = first.collect(16, chunk_length=8)

    saved = torch.load(path, weights_only=True)  # as rlcore.checkpoint loads it
    assert saved["collector"]["obs"].dtype == torch.uint8
    resumed = make()
    resumed.policy.load_state_dict(first.policy.state_dict())
    resumed.load_state_dict(saved["collector"])
    torch.set_rng_state(saved["rng"])
    again = resumed.collect(16, chunk_length=8)

    for name in ["obs", "actions", "logprobs", "values", "rewards", "dones", "episode_starts", "states"]:
        torch.testing.assert_close(getattr(again, name), getattr(straight, name), atol=0, rtol=0, msg=name)
    assert again.obs.dtype == torch.uint8
    assert again.episodes == straight.episodes and resumed.global_step == first.global_step
    assert straight.states.abs().sum() > 0 and straight.episode_starts[1:].any()


def test_whole_pixel_episodes_stay_uint8_and_report_games(pixel_env) -> None:
    """REINFORCE's collector: uint8 frames through pack_episodes; rewards clipped, games raw."""
    envs = pixel_env(3, frame_stack=1, size=36, lives=2, episodic_life=True)
    torch.manual_seed(0)
    policy = build_policy(policy_config("gru", (1, 36, 36), 6, 16, 1, 1))
    collector = EpisodeCollector(envs, policy, torch.device("cpu"), seed=0, clip_rewards=True)
    batch = collector.collect_episodes(40)
    assert all(e.obs.dtype == torch.uint8 for e in batch.episodes)
    assert all(set(e.rewards.unique().tolist()) <= {-1.0, 0.0, 1.0} for e in batch.episodes)
    assert [(e.ret, e.length) for e in batch.finished] == envs.games
    packed = pack_episodes(batch, policy.initial_state(1), gamma=0.99)
    assert packed.obs.dtype == torch.uint8
    logits, _, _ = policy(packed.obs, packed.initial_states, packed.episode_starts)
    replayed = distributions.log_prob(logits, packed.actions)
    assert ((replayed - packed.logprobs).abs() * packed.fresh).max() < 1e-5


BOX = {"kind": "gaussian", "low": [-0.5, -2.0], "high": [0.5, 1.0], "squash": "clip"}
NVEC = [3, 4]


@pytest.mark.parametrize(
    "space",
    [
        pytest.param(spaces.MultiDiscrete(NVEC), id="multi_discrete"),
        pytest.param(
            spaces.Box(np.array(BOX["low"], np.float32), np.array(BOX["high"], np.float32)), id="box"
        ),
    ],
)
@pytest.mark.parametrize("model", ["gru", "lstm"])
def test_non_discrete_actions_are_stored_by_shape_and_replay_exactly(action_env, space, model) -> None:
    torch.manual_seed(0)
    envs = action_env(4, space)
    config = policy_config(model, (3,), action_spec_of(space), 16, 1, 1)
    policy = build_policy(config)
    c = RolloutCollector(envs, policy, torch.device("cpu"), seed=1)
    c.collect(5)
    rollout = c.collect(24, chunk_length=8)
    dims = len(NVEC) if isinstance(space, spaces.MultiDiscrete) else 2
    dtype = torch.long if isinstance(space, spaces.MultiDiscrete) else torch.float32
    assert rollout.actions.shape == (24, 4, dims) and rollout.actions.dtype == dtype
    sent = np.stack(envs.received[5:])
    if isinstance(space, spaces.MultiDiscrete):
        np.testing.assert_array_equal(sent, rollout.actions.numpy())
        assert (sent < np.array(NVEC)).all() and len(np.unique(sent[..., 1])) == 4
    else:
        # Stored: the raw Gaussian samples (std 1, so often outside the bounds); sent: clipped.
        raw = rollout.actions.numpy()
        assert (raw < np.array(BOX["low"])).any() and (raw > np.array(BOX["high"])).any()
        np.testing.assert_array_equal(sent, np.clip(raw, BOX["low"], BOX["high"]))
        assert sent.dtype == np.float32

    zeros = torch.zeros_like(rollout.rewards)
    batch = rollout.sequences(zeros, zeros, chunk_length=8)
    params, _, _ = policy(batch.obs, batch.initial_states, batch.episode_starts)
    replayed = policy.dist.log_prob(params, batch.actions)
    assert ((replayed - batch.logprobs).abs() * batch.mask).max() < 1e-5

    # Whole episodes (REINFORCE) keep the action shape too.
    episodes = EpisodeCollector(action_env(4, space), policy, torch.device("cpu"), seed=2).collect_episodes(
        40
    )
    packed = pack_episodes(episodes, policy.initial_state(1), 0.99)
    assert packed.actions.shape[2:] == (dims,) and packed.actions.dtype == dtype
    params, _, _ = policy(packed.obs, packed.initial_states, packed.episode_starts)
    assert ((policy.dist.log_prob(params, packed.actions) - packed.logprobs).abs() * packed.mask).max() < 1e-5
