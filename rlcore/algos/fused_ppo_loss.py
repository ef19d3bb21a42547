"""PPO's loss for a categorical policy on the CPU in one compiled pass (`rlcore/csrc/ppo_loss.cpp`).

The same loss as `ppo.ppo_loss`, which the tests compare it with in float64, forward and
gradients. The kernel returns the gradient with respect to the logits and values along
with the loss, so the backward is one multiplication: the Python loss is some eighty
operator calls, forward and backward, a fifth of a minibatch at CartPole's sizes.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.autograd.function import FunctionCtx, once_differentiable

from rlcore import compiled
from rlcore.distributions import ActionDist, Categorical
from rlcore.rollout import Sequences
from rlcore.spec import TrainSpec

STATS = ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction")  # the kernel's order


def applies(dist: ActionDist, logits: torch.Tensor) -> bool:
    """Whether the compiled loss takes this minibatch: a categorical policy's CPU float logits."""
    return isinstance(dist, Categorical) and compiled.applies_to(logits)


def ppo_loss(
    logits: torch.Tensor, values: torch.Tensor, mb: Sequences, clip: float, spec: TrainSpec
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """The loss, the replayed log-probs and the statistics, as `ppo.Loss` holds them."""
    dtype = logits.dtype
    loss, stats, logprobs = _CategoricalPPOLoss.apply(
        logits,
        values,
        mb.actions,
        *(t.to(dtype) for t in (mb.logprobs, mb.advantages, mb.returns, mb.mask)),
        (clip, spec.vf_coef, spec.ent_coef, spec.normalize_advantages),
    )
    return loss, logprobs.view(mb.actions.shape), dict(zip(STATS, stats.unbind(), strict=True))


class _CategoricalPPOLoss(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: FunctionCtx,
        logits: torch.Tensor,
        values: torch.Tensor,
        actions: torch.Tensor,
        old_logprobs: torch.Tensor,
        advantages: torch.Tensor,
        returns: torch.Tensor,
        mask: torch.Tensor,
        coefficients: tuple[float, float, float, bool],
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        loss, stats, logprobs, grad_logits, grad_values = compiled.losses().categorical_ppo_loss(
            logits.reshape(-1, logits.shape[-1]).contiguous(),
            *(t.reshape(-1).contiguous() for t in (values, actions, old_logprobs, advantages, returns, mask)),
            *coefficients,
        )
        ctx.save_for_backward(grad_logits.view(logits.shape), grad_values.view(values.shape))
        ctx.mark_non_differentiable(stats, logprobs)
        return loss, stats, logprobs

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_loss: torch.Tensor, *_: Any) -> tuple[Any, ...]:
        grad_logits, grad_values = ctx.saved_tensors
        return grad_loss * grad_logits, grad_loss * grad_values, None, None, None, None, None, None
