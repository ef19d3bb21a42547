"""Trainers: the policy trained is the policy that acted; checkpoints resume exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rlcore.run import Run, SpecMismatchError
from rlcore.trainer import train
from tests.rlcore.conftest import RecordingSink, assert_same_points


@pytest.mark.parametrize("algo", ["reinforce", "a2c", "ppo"])
@pytest.mark.parametrize("model", ["gru", "lstm"])
def test_update_replays_the_log_probs_it_acted_with(algo, model, make_spec, sink, tmp_path) -> None:
    # Short random-policy episodes end inside chunks; bptt 16 < rollout 48 makes chunks
    # start from stored mid-episode states.
    spec = make_spec(
        algo=algo,
        model=model,
        env_id="CartPole-v1",
        num_envs=4,
        rollout_length=48,
        bptt_length=16,
        minibatches=2,
        total_steps=4 * 48 * 4,
        **({"epochs": 2} if algo == "ppo" else {}),
    )
    train(spec, tmp_path, sink=sink)
    errors = sink.values("losses/replay_error")
    # REINFORCE updates once enough whole episodes have ended, so it may update less often.
    assert len(errors) == 4 if algo != "reinforce" else len(errors) >= 2
    assert max(errors) < 1e-5


@pytest.mark.parametrize(
    "device",
    [
        "cpu",
        pytest.param(
            "cuda",
            marks=pytest.mark.skipif(
                not torch.cuda.is_available(),
                reason="needs CUDA: resuming must restore the CUDA generator that samples the actions",
            ),
        ),
    ],
)
def test_resume_continues_exactly(device, make_spec, sink, tmp_path: Path) -> None:
    spec = make_spec(
        algo="ppo",
        model="lstm",
        env_id="CartPoleFlicker-v1",
        device=device,
        num_envs=4,
        rollout_length=32,
        bptt_length=8,
        total_steps=4 * 32 * 6,
        eval_interval=256,
        eval_episodes=2,
        eval_deterministic=False,  # sampled: the evaluation generator must resume too
    )
    straight_sink = RecordingSink()
    train(spec, tmp_path / "straight", sink=straight_sink)

    stopped = train(spec, tmp_path / "resumed", should_stop=lambda: len(sink.points) >= 2, sink=sink)
    assert stopped.stopped and stopped.steps == 2 * 4 * 32
    finished = train(spec, tmp_path / "resumed", sink=sink)
    assert not finished.stopped and finished.steps == spec.total_steps
    assert [step for step, _ in sink.points] == [128 * i for i in range(1, 7)]
    assert sink.flushed_at == [256, 768], "the sink is flushed before every checkpoint"
    # Same episodes, evaluations and losses: every random stream was restored.
    assert "eval/episodic_return" in sink.points[1][1]
    assert_same_points(sink, straight_sink)

    straight = load_file(tmp_path / "straight" / "policy.safetensors")
    resumed = load_file(tmp_path / "resumed" / "policy.safetensors")
    for name, tensor in straight.items():
        torch.testing.assert_close(resumed[name], tensor, atol=1e-6, rtol=0)


def test_pong_trains_checkpoints_resumes_exactly_and_exports(make_spec, sink, tmp_path: Path) -> None:
    """Pixels end to end: CNN + lstm on flickering Pong with sticky actions and episodic life."""
    spec = make_spec(
        env_id="ALE/Pong-v5",
        model="lstm",
        frame_stack=1,
        flicker=0.5,
        episodic_life=True,
        hidden_size=32,
        num_envs=2,
        rollout_length=32,
        minibatches=2,
        epochs=1,
        total_steps=2 * 32 * 4,
        eval_episodes=0,  # ten whole games of Pong at the end would take five times this test
    )
    straight_sink = RecordingSink()
    train(spec, tmp_path / "straight", sink=straight_sink)
    stopped = train(spec, tmp_path / "resumed", should_stop=lambda: len(sink.points) >= 2, sink=sink)
    assert stopped.stopped and stopped.steps == 2 * 2 * 32
    train(spec, tmp_path / "resumed", sink=sink)
    assert_same_points(sink, straight_sink)  # the games were replayed to where they stood
    assert max(sink.values("losses/replay_error")) < 1e-5

    straight = load_file(tmp_path / "straight" / "policy.safetensors")
    resumed = load_file(tmp_path / "resumed" / "policy.safetensors")
    for name, tensor in straight.items():
        torch.testing.assert_close(resumed[name], tensor, atol=1e-6, rtol=0)
    document = json.loads((tmp_path / "resumed" / "policy.json").read_text())
    assert document["config"]["encoder"] == "cnn" and document["config"]["obs_shape"] == [1, 84, 84]
    assert document["metadata"]["env_options"]["flicker"] == 0.5
    assert (tmp_path / "resumed" / "policy.onnx").stat().st_size > 0


def test_a_run_folder_refuses_another_spec(make_spec, tmp_path: Path) -> None:
    train(make_spec(algo="a2c", model="mlp", total_steps=64, num_envs=4, rollout_length=16), tmp_path)
    with pytest.raises(SpecMismatchError):
        train(make_spec(algo="a2c", model="gru", total_steps=64, num_envs=4, rollout_length=16), tmp_path)


def test_stop_flag_stops_between_updates_and_exports(make_spec, tmp_path: Path) -> None:
    spec = make_spec(algo="a2c", model="gru", total_steps=10**6, num_envs=4, rollout_length=16)
    result = train(spec, tmp_path, should_stop=lambda: True)
    assert result.stopped and result.steps == 0
    assert (tmp_path / "policy.onnx").exists() and (tmp_path / "checkpoints" / "last.pt").exists()


def test_envs_without_saveable_state_resume_with_fresh_episodes(make_spec, sink, tmp_path: Path) -> None:
    spec = make_spec(
        algo="a2c",
        model="gru",
        env_id="LunarLander-v3",
        num_envs=2,
        rollout_length=16,
        total_steps=2 * 16 * 4,
    )
    train(spec, tmp_path, sink=sink, should_stop=lambda: len(sink.points) >= 2)
    result = train(spec, tmp_path, sink=sink)
    assert result.steps == spec.total_steps
    assert [step for step, _ in sink.points] == [32, 64, 96, 128]


def test_ppo_reports_the_mean_over_every_minibatch_of_the_update(make_spec, sink, tmp_path: Path) -> None:
    # A learning rate too small to move the weights: every minibatch sees the policy that
    # acted. With one env column per minibatch, the mean over all minibatches and epochs
    # is the mean over the whole rollout, while any single minibatch is one column's.
    spec = make_spec(
        algo="ppo",
        model="gru",
        num_envs=4,
        rollout_length=32,
        minibatches=4,
        epochs=2,
        learning_rate=1e-20,
        total_steps=4 * 32,
    )
    train(spec, tmp_path / "trained", sink=sink)
    ((_, reported),) = sink.points

    run = Run(spec, tmp_path / "recomputed")  # same seed: the same first rollout
    try:
        rollout = run.collector.collect(spec.rollout_length)
    finally:
        run.close()
    _, returns = rollout.gae(spec.gamma, spec.gae_lambda)
    per_column = 0.5 * ((rollout.values - returns) ** 2).mean(0)
    assert reported["losses/value_loss"] == pytest.approx(float(per_column.mean()), rel=1e-5)
    assert all(abs(reported["losses/value_loss"] - float(v)) > 1e-3 for v in per_column)
    assert reported["losses/approx_kl"] == pytest.approx(0.0, abs=1e-6)
    assert reported["losses/clip_fraction"] == 0.0
    assert reported["losses/epochs"] == 2


def test_ppo_target_kl_ends_the_epochs_early(make_spec, sink, tmp_path: Path) -> None:
    base = {"algo": "ppo", "model": "mlp", "num_envs": 4, "rollout_length": 32, "minibatches": 4}
    spec = make_spec(**base, epochs=5, total_steps=3 * 4 * 32)
    train(spec, tmp_path / "all", sink=sink)
    assert sink.values("losses/epochs") == [5.0, 5.0, 5.0]

    # The first minibatch's KL is 0 (no step yet), the next ones' are not: the mean of the
    # first epoch exceeds any tiny target.
    early = RecordingSink()
    train(make_spec(**base, epochs=5, total_steps=3 * 4 * 32, target_kl=1e-9), tmp_path / "early", sink=early)
    assert early.values("losses/epochs") == [1.0, 1.0, 1.0]
    assert all(kl > 1e-9 for kl in early.values("losses/approx_kl"))


def test_a_checkpoint_whose_spec_holds_every_field_resumes(make_spec, sink, tmp_path: Path) -> None:
    # Checkpoints written before NOT_APPLYING existed dumped every field, those the
    # algorithm ignores too: such a run folder must still resume, not be refused.
    spec = make_spec(algo="a2c", model="gru", num_envs=2, rollout_length=16, total_steps=2 * 16 * 4)
    train(spec, tmp_path, sink=sink, should_stop=lambda: len(sink.points) >= 2)
    path = tmp_path / "checkpoints" / "last.pt"
    saved = torch.load(path, weights_only=True)
    saved["spec"] = json.dumps({**json.loads(saved["spec"]), "epochs": 1, "clip_range": 0.2})
    torch.save(saved, path)

    result = train(spec, tmp_path, sink=sink)
    assert result.steps == spec.total_steps
    assert [step for step, _ in sink.points] == [32, 64, 96, 128]


@pytest.mark.parametrize("model", ["gru", "lstm"])
def test_ppo_on_box_actions_replays_the_log_probs_it_acted_with(model, make_spec, sink, tmp_path) -> None:
    spec = make_spec(
        algo="ppo",
        model=model,
        env_id="Pendulum-v1",
        num_envs=3,
        rollout_length=48,
        bptt_length=16,
        minibatches=3,
        epochs=2,
        total_steps=3 * 48 * 3,
    )
    train(spec, tmp_path, sink=sink)
    errors = sink.values("losses/replay_error")
    assert len(errors) == 3 and max(errors) < 1e-5
    # The learned log-std moved (it is trained) and the export names the Gaussian heads.
    document = json.loads((tmp_path / "policy.json").read_text())
    assert document["config"]["action"] == {
        "kind": "gaussian",
        "low": [-2.0],
        "high": [2.0],
        "squash": "clip",
    }
    assert list(document["onnx"]["outputs"])[:2] == ["mean", "log_std"]
    assert load_file(tmp_path / "policy.safetensors")["log_std"].abs().item() > 0


@pytest.mark.parametrize("normalize", [False, True], ids=["raw", "normalized"])
def test_a_masked_pendulum_run_resumes_exactly(normalize, make_spec, sink, tmp_path: Path) -> None:
    # Normalised: the observation statistics (in the policy's weights, and those seen since
    # the last update) and the return-std tracker are restored too.
    spec = make_spec(
        normalize_obs=normalize,
        normalize_reward=normalize,
        algo="ppo",
        model="gru",
        env_id="PendulumMasked-v1",
        num_envs=2,
        rollout_length=32,
        bptt_length=8,
        minibatches=2,
        epochs=2,
        total_steps=2 * 32 * 5,
        eval_interval=128,
        eval_episodes=2,
    )
    straight_sink = RecordingSink()
    train(spec, tmp_path / "straight", sink=straight_sink)
    stopped = train(spec, tmp_path / "resumed", should_stop=lambda: len(sink.points) >= 2, sink=sink)
    assert stopped.stopped and stopped.steps == 2 * 2 * 32
    train(spec, tmp_path / "resumed", sink=sink)
    assert "eval/episodic_return" in sink.points[1][1]
    assert_same_points(sink, straight_sink)
    straight = load_file(tmp_path / "straight" / "policy.safetensors")
    resumed = load_file(tmp_path / "resumed" / "policy.safetensors")
    assert ("obs_norm.mean" in straight) == normalize
    for name, tensor in straight.items():
        torch.testing.assert_close(resumed[name], tensor, atol=1e-6, rtol=0)
