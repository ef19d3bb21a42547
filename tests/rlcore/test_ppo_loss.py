"""PPO's compiled loss (`rlcore/algos/fused_ppo_loss.py`) against the Python one it replaces."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from rlcore.algos import fused_ppo_loss
from rlcore.algos.ppo import Loss, loss_of, ppo_loss
from rlcore.distributions import Categorical, DiagGaussian
from rlcore.rollout import Sequences
from rlcore.spec import TrainSpec

STEPS, CHUNKS = 16, 12


def _minibatch(n_actions: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, Sequences]:
    """Logits and values to differentiate, and a minibatch whose ratios fall on both sides of the
    clip range, with padding, zero advantages and a chunk of nothing but padding."""
    gen = torch.Generator().manual_seed(0)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen, dtype=dtype)

    logits = randn(STEPS, CHUNKS, n_actions).requires_grad_()
    values = randn(STEPS, CHUNKS).requires_grad_()
    actions = torch.randint(n_actions, (STEPS, CHUNKS), generator=gen)
    acted = torch.log_softmax(logits.detach(), -1).gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    advantages = 3 * randn(STEPS, CHUNKS) + 1
    advantages[0, :3] = 0
    mask = torch.ones(STEPS, CHUNKS, dtype=dtype)
    mask[10:, 0] = 0
    mask[:, 1] = 0
    mb = Sequences(
        obs=torch.zeros(STEPS, CHUNKS, 1),
        actions=actions,
        logprobs=acted + 0.4 * randn(STEPS, CHUNKS),  # ratios from about 0.3 to 3
        values=values.detach().clone(),
        advantages=advantages,
        returns=randn(STEPS, CHUNKS),
        episode_starts=torch.zeros(STEPS, CHUNKS, dtype=torch.bool),
        mask=mask,
        initial_states=torch.zeros(CHUNKS, 1),
    )
    return logits, values, mb


def _spec(**overrides: Any) -> TrainSpec:
    return TrainSpec(algo="ppo", model="gru", env_id="CartPole-v1", ent_coef=0.05, **overrides)


def _both(n_actions: int, dtype: torch.dtype, clip: float, spec: TrainSpec) -> tuple[list[Any], list[Any]]:
    """Loss, log-probs, statistics and gradients: the Python loss's, then the compiled one's."""
    dist = Categorical(n_actions)
    results = []
    for compute in (
        lambda lg, v, mb: ppo_loss(dist, lg, v, mb, clip, spec),
        lambda lg, v, mb: Loss(*fused_ppo_loss.ppo_loss(lg, v, mb, clip, spec)),
    ):
        logits, values, mb = _minibatch(n_actions, dtype)
        loss = compute(logits, values, mb)
        grads = torch.autograd.grad(loss.total, (logits, values))
        results.append([loss.total, loss.logprobs, *loss.stats.values(), *grads])
    return results[0], results[1]


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("n_actions", [2, 5])
def test_equals_the_python_loss_and_its_gradients_in_float64(n_actions: int, normalize: bool) -> None:
    expected, got = _both(n_actions, torch.float64, 0.2, _spec(normalize_advantages=normalize))
    clip_fraction = expected[6]
    assert 0.2 < clip_fraction < 0.8  # both branches of the clipped surrogate are exercised
    for e, g in zip(expected, got, strict=True):
        torch.testing.assert_close(g, e, rtol=0, atol=1e-12)


def test_float32_is_close_to_the_python_loss() -> None:
    expected, got = _both(3, torch.float32, 0.1, _spec())
    for e, g in zip(expected, got, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)


def test_statistics_carry_the_python_loss_names() -> None:
    logits, values, mb = _minibatch(2, torch.float32)
    assert loss_of(Categorical(2), logits, values, mb, 0.2, _spec()).stats.keys() == (
        ppo_loss(Categorical(2), logits, values, mb, 0.2, _spec()).stats.keys()
    )


def test_applies_to_categorical_float_logits_on_the_cpu_only() -> None:
    logits = torch.zeros(4, 2)
    assert fused_ppo_loss.applies(Categorical(2), logits)
    assert not fused_ppo_loss.applies(Categorical(2), logits.half())
    assert not fused_ppo_loss.applies(DiagGaussian([-1.0], [1.0]), logits)


def test_an_action_outside_the_logits_is_refused_not_read() -> None:
    logits, values, mb = _minibatch(2, torch.float32)
    mb.actions[3, 3] = 2
    with pytest.raises(RuntimeError, match="an action outside the logits"):
        fused_ppo_loss.ppo_loss(logits, values, mb, 0.2, _spec())
