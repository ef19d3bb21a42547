"""Observation and reward normalisation: the statistics, the rollout, training, export, the spec."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium import spaces
from pydantic import ValidationError
from safetensors.torch import load_file

from rlcore.distributions import action_spec_of
from rlcore.envs import make_vec_env
from rlcore.export import export_policy, load_policy
from rlcore.models import ActorCritic, build_policy, policy_config, spec_policy_config
from rlcore.normalization import EPSILON, OBS_CLIP, REWARD_CLIP, ObsNormalizer, RewardScaler, RunningMeanStd
from rlcore.rollout import RolloutCollector
from rlcore.trainer import train
from tests.rlcore.test_export import TOLERANCE, session_for

# --- running statistics ---------------------------------------------------------------


def batches(shape: tuple[int, ...], seed: int = 0) -> list[np.ndarray]:
    """Batches of 1 to 40 samples far from zero mean and unit variance, one of them empty."""
    rng = np.random.default_rng(seed)
    sizes = [1, 7, 0, 40, 3, 1, 25]
    return [
        rng.normal(5.0, 3.0, size=(n, *shape)) * np.linspace(1, 4, int(np.prod(shape))).reshape(shape)
        for n in sizes
    ]


@pytest.mark.parametrize("shape", [(), (3,), (2, 2)])
def test_running_mean_std_equals_numpy_over_every_batch_so_far(shape: tuple[int, ...]) -> None:
    stats = RunningMeanStd(shape)
    assert (stats.mean == 0).all() and (stats.var == 1).all() and stats.count == 0
    seen: list[np.ndarray] = []
    for batch in batches(shape):
        stats.update(batch)
        seen.append(batch)
        everything = np.concatenate(seen)
        if not len(everything):
            continue
        assert stats.count == len(everything)
        np.testing.assert_allclose(stats.mean, everything.mean(0), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(stats.var, everything.var(0), rtol=1e-10, atol=1e-12)
    assert stats.mean.shape == shape and stats.var.shape == shape

    restored = RunningMeanStd(shape)
    restored.load_state_dict(stats.state_dict())
    assert (restored.mean == stats.mean).all() and (restored.var == stats.var).all()
    assert restored.count == stats.count


def test_obs_normalizer_updates_and_merges_as_numpy() -> None:
    data = batches((3,), seed=1)
    direct, pending, merged = (ObsNormalizer((3,)) for _ in range(3))
    for batch in data[:4]:
        direct.update(torch.from_numpy(batch).float())
        merged.update(torch.from_numpy(batch).float())
    for batch in data[4:]:
        # (T, N, 3) leading dims: every index is one sample.
        direct.update(torch.from_numpy(batch).float().reshape(-1, 1, 3))
        pending.update(torch.from_numpy(batch).float())
    merged.merge(pending)
    everything = np.concatenate([b.astype(np.float32) for b in data]).astype(np.float64)
    for stats in (direct, merged):
        assert stats.count.item() == len(everything) and stats.mean.dtype == torch.float64
        np.testing.assert_allclose(stats.mean.numpy(), everything.mean(0), rtol=1e-10)
        np.testing.assert_allclose(stats.var.numpy(), everything.var(0), rtol=1e-9)

    obs = torch.tensor([[5.0, -40.0, 100.0]])
    expected = ((obs.double() - direct.mean) / torch.sqrt(direct.var + EPSILON)).clamp(-OBS_CLIP, OBS_CLIP)
    torch.testing.assert_close(direct(obs), expected.float())
    assert direct(obs).dtype == torch.float32
    pending.reset()
    # No samples: only the clip.
    torch.testing.assert_close(pending(obs), obs.clamp(-OBS_CLIP, OBS_CLIP))


def sb3_scaled_rewards(rewards: np.ndarray, dones: np.ndarray, gamma: float) -> np.ndarray:
    """SB3 VecNormalize's reward scaling, written out: the std of every discounted return so far."""
    returns = np.zeros(rewards.shape[1])
    seen: list[np.ndarray] = []
    out = np.zeros_like(rewards)
    for t in range(len(rewards)):
        returns = returns * gamma + rewards[t]
        seen.append(returns.copy())
        out[t] = np.clip(
            rewards[t] / np.sqrt(np.concatenate(seen).var() + EPSILON), -REWARD_CLIP, REWARD_CLIP
        )
        returns[dones[t]] = 0.0
    return out


def test_reward_scaler_divides_by_the_std_of_the_discounted_return() -> None:
    rng = np.random.default_rng(2)
    rewards = rng.normal(3.0, 2.0, size=(60, 4))
    dones = rng.random((60, 4)) < 0.1
    scaler = RewardScaler(4, gamma=0.9)
    got = np.stack([scaler(r, d) for r, d in zip(rewards, dones, strict=True)])
    np.testing.assert_allclose(got, sb3_scaled_rewards(rewards, dones, 0.9), rtol=1e-9)
    assert (np.sign(got) == np.sign(rewards)).all(), "scaled, not centred"
    # Equal first returns have no variance yet: the scaled rewards are clipped.
    first = RewardScaler(2, gamma=0.99)(np.ones(2), np.zeros(2, bool))
    np.testing.assert_array_equal(first, [REWARD_CLIP, REWARD_CLIP])

    saved = scaler.state_dict()
    resumed, fresh = RewardScaler(4, gamma=0.9), RewardScaler(4, gamma=0.9)
    resumed.load_state_dict(saved)
    np.testing.assert_array_equal(resumed(rewards[0], dones[0]), scaler(rewards[0], dones[0]))
    fresh.load_state_dict(saved, episodes=False)  # new episodes: the statistics stay, the returns restart
    assert (fresh.returns == 0).all() and fresh.stats.count == 60 * 4


# --- the collector ---------------------------------------------------------------------


def normalized_policy(obs_shape: tuple[int, ...], actions: int | dict, seed: int = 0) -> ActorCritic:
    """A gru policy with an observation normaliser and a policy head far from its near-zero start
    (so that a change of normalisation shows in the log-probs)."""
    torch.manual_seed(seed)
    policy = build_policy(policy_config("gru", obs_shape, actions, 16, 1, 1, "dense", normalize_obs=True))
    with torch.no_grad():
        torch.nn.init.normal_(policy.policy_head.weight, std=1.0)
    return policy


def replayed_logprobs(policy: ActorCritic, rollout) -> torch.Tensor:  # type: ignore[no-untyped-def]
    with torch.no_grad():
        params, _, _ = policy(rollout.obs, rollout.states[0], rollout.episode_starts)
    return policy.dist.log_prob(params, rollout.actions)


def test_observation_statistics_change_only_when_committed() -> None:
    envs = make_vec_env("Pendulum-v1", 3, 0)
    policy = normalized_policy((3,), action_spec_of(envs.single_action_space))
    collector = RolloutCollector(envs, policy, torch.device("cpu"), seed=0)
    reset_obs = collector.obs.clone()
    assert policy.obs_norm.count.item() == 3  # seeded with the reset observations
    seen = [reset_obs]
    for _ in range(2):
        before = {k: v.clone() for k, v in policy.obs_norm.state_dict().items()}
        rollout = collector.collect(20, chunk_length=20)
        seen += [rollout.obs[1:].reshape(-1, 3), collector.obs]
        # Acting did not move the statistics: a replay gives the acted log-probs...
        assert all(torch.equal(before[k], v) for k, v in policy.obs_norm.state_dict().items())
        torch.testing.assert_close(replayed_logprobs(policy, rollout), rollout.logprobs, atol=1e-5, rtol=0)
        collector.commit_statistics()
        # ...which the committed statistics would not (so the check above can fail).
        assert (replayed_logprobs(policy, rollout) - rollout.logprobs).abs().max() > 1e-3
        assert collector.obs_seen.count.item() == 0
    # Every observation seen, each once: the reset ones and those after each step.
    everything = torch.cat(seen).double().numpy()
    assert policy.obs_norm.count.item() == len(everything) == 3 + 2 * 20 * 3
    np.testing.assert_allclose(policy.obs_norm.mean.numpy(), everything.mean(0), rtol=1e-9)
    np.testing.assert_allclose(policy.obs_norm.var.numpy(), everything.var(0), rtol=1e-9)
    envs.close()


def test_a_collector_state_holds_the_observations_not_yet_committed() -> None:
    def collector() -> RolloutCollector:
        envs = make_vec_env("Pendulum-v1", 2, 0)
        return RolloutCollector(
            envs, normalized_policy((3,), action_spec_of(envs.single_action_space)), "cpu", 0
        )

    first, second = collector(), collector()
    first.collect(10)
    second.load_state_dict(first.state_dict())
    second.policy.load_state_dict(first.policy.state_dict())
    for c in (first, second):
        c.commit_statistics()
    assert first.policy.obs_norm.count.item() == 2 + 10 * 2
    for name, tensor in first.policy.obs_norm.state_dict().items():
        assert torch.equal(second.policy.obs_norm.state_dict()[name], tensor)


def test_rewards_are_scaled_for_training_and_episode_returns_stay_raw(action_env) -> None:  # type: ignore[no-untyped-def]
    space = spaces.Box(-1.0, 1.0, (2,), np.float32)
    rollouts, received = [], []
    for normalize in (False, True):
        envs = action_env(4, space)
        policy = normalized_policy((3,), action_spec_of(space), seed=1)
        collector = RolloutCollector(
            envs, policy, torch.device("cpu"), seed=0, normalize_reward=normalize, gamma=0.9
        )
        rollouts.append(collector.collect(40, chunk_length=40))
        received.append(np.stack(envs.received))
    raw, scaled = rollouts
    # Rewards do not change acting: the same actions, the same episodes with raw returns.
    np.testing.assert_array_equal(received[0], received[1])
    assert raw.episodes == scaled.episodes and len(raw.episodes) > 10
    raw_rewards = received[0].sum(-1)  # the env's reward is the sum of the action's entries
    torch.testing.assert_close(raw.rewards, torch.from_numpy(raw_rewards).float())
    expected = sb3_scaled_rewards(raw_rewards.astype(np.float64), raw.dones.numpy(), 0.9)
    torch.testing.assert_close(scaled.rewards, torch.from_numpy(expected).float())


# --- training --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algo", "env_id"),
    [("ppo", "Pendulum-v1"), ("a2c", "popgym/BattleshipEasy"), ("reinforce", "CartPole-v1")],
)
def test_training_with_normalisation_replays_the_log_probs_it_acted_with(
    algo, env_id, make_spec, sink, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    spec = make_spec(
        algo=algo,
        model="gru",
        env_id=env_id,
        num_envs=3,
        rollout_length=48,
        bptt_length=16,
        minibatches=3,
        total_steps=3 * 48 * 4,
        normalize_obs=True,
        normalize_reward=True,
        **({"epochs": 2} if algo == "ppo" else {}),
    )
    train(spec, tmp_path, sink=sink)
    errors = sink.values("losses/replay_error")
    assert len(errors) >= 2 and max(errors) < 1e-5
    weights = load_file(tmp_path / "policy.safetensors")
    # Every observation, each once: the reset ones, then one per env step.
    assert weights["obs_norm.count"].item() == spec.num_envs + sink.points[-1][0]
    assert weights["obs_norm.var"].min() > 0
    config = json.loads((tmp_path / "policy.json").read_text())["config"]
    assert config["obs_norm"] == {"clip": OBS_CLIP, "epsilon": EPSILON}
    if env_id == "CartPole-v1":  # raw reward 1 per step: the reported return is the length
        assert sink.values("charts/episodic_return") == sink.values("charts/episodic_length")


def test_a_normalised_reinforce_run_resumes_exactly(make_spec, sink, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.rlcore.conftest import assert_same_points

    spec = make_spec(
        algo="reinforce",
        model="gru",
        env_id="CartPole-v1",
        num_envs=3,
        rollout_length=40,
        total_steps=3 * 40 * 5,
        normalize_obs=True,
        normalize_reward=True,
    )
    straight = type(sink)()
    train(spec, tmp_path / "straight", sink=straight)
    train(spec, tmp_path / "resumed", should_stop=lambda: len(sink.points) >= 2, sink=sink)
    train(spec, tmp_path / "resumed", sink=sink)
    assert_same_points(sink, straight)
    a = load_file(tmp_path / "straight" / "policy.safetensors")
    b = load_file(tmp_path / "resumed" / "policy.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- export ----------------------------------------------------------------------------


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "popgym/BattleshipEasy"])
def test_exported_policies_normalise_raw_observations_inside(env_id: str, make_spec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Torch, onnxruntime and load_policy agree over real episodes, all fed raw observations."""
    envs = make_vec_env(env_id, 4, 0)
    spec = make_spec(env_id=env_id, model="gru", normalize_obs=True, hidden_size=16)
    config = spec_policy_config(
        spec, envs.single_observation_space.shape, action_spec_of(envs.single_action_space)
    )
    policy = normalized_policy(envs.single_observation_space.shape, config["action"])
    assert build_policy(config).state_dict().keys() == policy.state_dict().keys()
    collector = RolloutCollector(envs, policy, torch.device("cpu"), seed=0)
    rollout = collector.collect(60, chunk_length=60)
    collector.commit_statistics()
    stats = policy.obs_norm
    assert (stats.mean.abs() > 1e-3).any() and ((stats.var - 1).abs() > 1e-3).any(), (
        "statistics far from identity"
    )
    export_policy(policy, config, tmp_path)
    assert set(load_file(tmp_path / "policy.safetensors")) >= {
        "obs_norm.mean",
        "obs_norm.var",
        "obs_norm.count",
    }

    session = session_for(tmp_path)
    outputs = [o.name for o in session.get_outputs()]
    loaded = load_policy(tmp_path)
    obs, starts = rollout.obs.numpy(), rollout.episode_starts.numpy()
    state = policy.initial_state(4)
    onnx_state = np.zeros((4, *policy.state_shape), np.float32)
    for t in range(len(obs)):
        with torch.no_grad():
            params, value, state = policy(rollout.obs[t : t + 1], state, rollout.episode_starts[t : t + 1])
        onnx_state[starts[t]] = 0.0
        got = dict(zip(outputs, session.run(None, {"obs": obs[t], "state": onnx_state}), strict=True))
        onnx_state = got["state_out"]
        from_loaded = loaded.action_dist_params(obs[t], episode_starts=starts[t])
        expected = params[0].numpy()
        onnx_params = np.concatenate([got[o] for o in outputs if o in ("logits", "mean", "log_std")], -1)
        loaded_params = np.concatenate(list(from_loaded.values()), -1)
        np.testing.assert_allclose(onnx_params, expected, atol=TOLERANCE, rtol=0)
        np.testing.assert_allclose(loaded_params, expected, atol=TOLERANCE, rtol=0)
        np.testing.assert_allclose(got["value"], value[0].numpy(), atol=TOLERANCE, rtol=0)
        np.testing.assert_allclose(got["state_out"], state.numpy(), atol=TOLERANCE, rtol=0)
    envs.close()

    # The same weights without the normaliser act otherwise: the graph does normalise.
    stats.reset()
    export_policy(policy, config, tmp_path / "identity")
    identity = session_for(tmp_path / "identity").run(
        None, {"obs": obs[0], "state": np.zeros_like(onnx_state)}
    )
    normalised = session.run(None, {"obs": obs[0], "state": np.zeros_like(onnx_state)})
    assert np.abs(identity[0] - normalised[0]).max() > 1e-2


# --- the spec ---------------------------------------------------------------------------


def test_spec_options_default_off_except_for_ppo_on_masked_cartpole(make_spec) -> None:  # type: ignore[no-untyped-def]
    spec = make_spec()
    assert spec.normalize_obs is False and spec.normalize_reward is False
    assert spec_policy_config(spec, (4,), 2)["obs_norm"] is None
    # rl-zoo3's CartPoleNoVel setting: PPO on masked CartPole normalises its observations.
    masked = make_spec(env_id="CartPoleMasked-v1")
    assert masked.normalize_obs is True
    assert spec_policy_config(masked, (2,), 2)["obs_norm"] is not None
    assert make_spec(env_id="CartPoleMasked-v1", normalize_obs=False).normalize_obs is False
    for algo in ("reinforce", "a2c"):
        assert make_spec(env_id="CartPoleMasked-v1", algo=algo).normalize_obs is False


def test_spec_options_are_dumped(make_spec) -> None:  # type: ignore[no-untyped-def]
    on = make_spec(normalize_obs=True, normalize_reward=True)
    dump = on.model_dump(mode="json")
    assert dump["normalize_obs"] is True and dump["normalize_reward"] is True
    assert type(on).from_saved(on.model_dump_json()) == on
    # Rewards of pixel envs may be normalised (after the sign clip).
    assert make_spec(env_id="ALE/Pong-v5", normalize_reward=True).normalize_reward is True


@pytest.mark.parametrize("env_id", ["ALE/Pong-v5", "CueRecallPixels-v0"])
def test_normalize_obs_on_a_pixel_env_is_refused_naming_the_field(env_id: str, make_spec) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as caught:
        make_spec(env_id=env_id, normalize_obs=True)
    errors = caught.value.errors()
    assert [e["loc"] for e in errors] == [("normalize_obs",)]
    assert "uint8 frames" in errors[0]["msg"] and env_id in errors[0]["msg"]
    with pytest.raises(ValueError, match="vector observations"):
        build_policy(policy_config("gru", (4, 84, 84), 6, 16, 1, 1, normalize_obs=True))
