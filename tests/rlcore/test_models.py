"""Model variants: one interface; memory where it should be and nowhere else."""

from __future__ import annotations

import pytest
import torch

from rlcore.models import build_policy, policy_config

VARIANTS = ["mlp", "gru_cell", "gru", "lstm", "window"]


def make_policy(model: str, layers: int = 1, window: int = 4, encoder: str = "dense"):
    torch.manual_seed(0)
    return build_policy(policy_config(model, (4,), 2, 16, layers, window, encoder))


@pytest.mark.parametrize("encoder", ["dense", "none"])
@pytest.mark.parametrize("model", VARIANTS)
@pytest.mark.parametrize("layers", [1, 2])
def test_chunk_replay_equals_step_by_step(model: str, layers: int, encoder: str) -> None:
    """Running a chunk with episode starts inside equals acting one step at a time."""
    policy = make_policy(model, layers, encoder=encoder)
    steps, batch = 24, 5
    obs = torch.randn(steps, batch, 4)
    starts = torch.rand(steps, batch) < 0.2
    state0 = torch.randn(batch, *policy.state_shape)

    state, stepped = state0, []
    for t in range(steps):
        logits, _, state = policy(obs[t : t + 1], state, starts[t : t + 1])
        stepped.append(logits)
    chunk_logits, _, chunk_state = policy(obs, state0, starts)

    torch.testing.assert_close(chunk_logits, torch.cat(stepped), atol=1e-6, rtol=0)
    torch.testing.assert_close(chunk_state, state, atol=1e-6, rtol=0)


def gradient_to_earlier_obs(model: str, k: int, start_at: int | None = None) -> float:
    policy = make_policy(model, window=k + 2)
    obs = torch.randn(k + 1, 1, 4, requires_grad=True)
    starts = torch.zeros(k + 1, 1, dtype=torch.bool)
    starts[0] = True
    if start_at is not None:
        starts[start_at] = True
    logits, _, _ = policy(obs, policy.initial_state(1), starts)
    logits[-1].sum().backward()
    return float(obs.grad[0].abs().sum())


@pytest.mark.parametrize("model", ["gru", "lstm"])
def test_gradient_flows_through_time_in_recurrent_models(model: str) -> None:
    assert gradient_to_earlier_obs(model, k=6) > 1e-6


@pytest.mark.parametrize("model", ["mlp", "gru_cell"])
def test_no_gradient_through_time_in_stateless_models(model: str) -> None:
    assert gradient_to_earlier_obs(model, k=6) == 0.0


@pytest.mark.parametrize("model", ["gru", "lstm", "window"])
def test_episode_start_cuts_memory_and_gradient(model: str) -> None:
    assert gradient_to_earlier_obs(model, k=6, start_at=3) == 0.0


def test_window_sees_exactly_k_observations() -> None:
    k = 3
    policy = make_policy("window", window=k)
    obs = torch.randn(8, 1, 4, requires_grad=True)
    starts = torch.zeros(8, 1, dtype=torch.bool)
    starts[0] = True
    logits, _, _ = policy(obs, policy.initial_state(1), starts)
    logits[-1].sum().backward()
    touched = obs.grad.abs().sum(dim=(1, 2)) > 0
    assert touched.tolist() == [False] * (8 - k) + [True] * k


@pytest.mark.parametrize("model", ["mlp", "gru", "lstm"])
def test_without_encoder_the_core_reads_the_observation(model: str) -> None:
    policy = make_policy(model, encoder="none")
    first_layer = next(p for name, p in policy.core.named_parameters() if "weight" in name)
    assert first_layer.shape[-1] == 4  # the observation size, not the hidden size
    assert not any(True for _ in policy.encoder.parameters())


def test_state_shapes_are_batch_first() -> None:
    assert make_policy("gru", layers=2).initial_state(7).shape == (7, 2, 16)
    assert make_policy("lstm", layers=2).initial_state(7).shape == (7, 4, 16)
    assert make_policy("window", window=5).initial_state(7).shape == (7, 4, 16)
    assert make_policy("mlp").initial_state(7).shape == (7, 0)
