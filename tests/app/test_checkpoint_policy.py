"""A running job's policy, exported from its last checkpoint, keeps the observation normaliser."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from safetensors.torch import load_file

from app.checkpoint_policy import export_from_checkpoint
from rlcore.checkpoint import load_checkpoint
from rlcore.export import load_policy
from rlcore.models import build_policy
from rlcore.run import CHECKPOINTS
from rlcore.spec import TrainSpec
from rlcore.trainer import train


def test_a_checkpoint_of_a_normalised_run_exports_its_statistics(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    spec = TrainSpec(
        algo="ppo",
        model="gru",
        env_id="Pendulum-v1",
        device="cpu",
        num_envs=2,
        rollout_length=16,
        total_steps=2 * 16 * 2,
        normalize_obs=True,
        normalize_reward=True,
        checkpoint_interval=0,
    )
    train(spec, tmp_path)
    saved = load_checkpoint(tmp_path / CHECKPOINTS)
    assert saved is not None and saved["policy"]["obs_norm.count"].item() == 2 + spec.total_steps

    exported = export_from_checkpoint(tmp_path)
    assert exported is not None
    folder, step = exported
    assert step == spec.total_steps
    weights = load_file(folder / "policy.safetensors")
    assert torch.equal(weights["obs_norm.mean"], saved["policy"]["obs_norm.mean"])

    # The ONNX graph and load_policy take raw observations, as the checkpointed policy does.
    policy = build_policy(saved["policy_config"])
    policy.load_state_dict(saved["policy"])
    obs = np.array([[1.0, 0.0, 7.5], [-0.5, 0.8, -3.0]], np.float32)
    state = policy.initial_state(2)
    with torch.no_grad():
        params, _, _ = policy(torch.from_numpy(obs)[None], state, torch.zeros(1, 2, dtype=torch.bool))
    session = ort.InferenceSession(str(folder / "policy.onnx"), providers=["CPUExecutionProvider"])
    mean = session.run(["mean"], {"obs": obs, "state": state.numpy()})[0]
    np.testing.assert_allclose(mean, params[0, :, :1].numpy(), atol=1e-5, rtol=0)
    loaded = load_policy(folder).action_dist_params(obs)
    np.testing.assert_allclose(loaded["mean"], mean, atol=1e-5, rtol=0)
