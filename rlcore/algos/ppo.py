"""Proximal policy optimisation (Schulman et al. 2017) with recurrent policies.

for each update:
    play num_envs x rollout_length steps, storing the state going into each chunk's first step
    A_t = GAE(gamma, lambda); R_t = A_t + V_t
    cut each env column into chunks of bptt_length steps (time order kept)
    for each epoch, for each minibatch of whole chunks:
        replay the chunks from their stored initial states, resetting at episode starts
        r_t = pi(a_t|h_t) / pi_old(a_t|h_t)     (exactly 1 before the first step)
        loss = -mean(min(r_t A_t, clip(r_t, 1-eps, 1+eps) A_t))
               + c_v * mean((V - R)^2) / 2 - beta * entropy
    after an epoch whose mean approx KL exceeds target_kl, stop the epochs
report the losses, KL and clip fraction averaged over every minibatch of the update

The loss is `ppo_loss` below; for discrete actions on the CPU the same loss runs compiled,
gradient included (`fused_ppo_loss.py`), as its ~80 small operator calls were a fifth of a
minibatch at CartPole's sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rlcore.algos import fused_ppo_loss
from rlcore.algos.common import Means, masked_mean, normalize, replay_error
from rlcore.device import autocast
from rlcore.distributions import ActionDist
from rlcore.rollout import Sequences
from rlcore.run import Run
from rlcore.spec import TrainSpec


def train(run: Run) -> None:
    spec, policy = run.spec, run.policy
    while not run.finished():
        clip = spec.clip_range * run.anneal()
        rollout = run.collector.collect(spec.rollout_length, spec.chunk_length)
        advantages, returns = rollout.gae(spec.gamma, spec.gae_lambda)
        batch = rollout.sequences(advantages, returns, spec.chunk_length)

        update, replay = Means(), None
        for epoch in range(1, spec.epochs + 1):  # noqa: B007 (reported: the epochs run)
            this_epoch = Means()
            for mb in batch.minibatches(spec.minibatches):
                with autocast(run.device, spec.bf16):
                    logits, values, _ = policy(mb.obs, mb.initial_states, mb.episode_starts)
                loss = loss_of(policy.dist, logits, values, mb, clip, spec)
                if replay is None:
                    replay = replay_error(loss.logprobs, mb.logprobs, mb.mask)
                run.optimize(loss.total)
                update.add(**loss.stats)
                this_epoch.add(approx_kl=loss.stats["approx_kl"])
            if spec.target_kl is not None and this_epoch.mean("approx_kl") > spec.target_kl:
                break  # the policy has moved far enough from the one that acted

        run.end_update(
            rollout.episodes,
            {**update.means("losses/"), "losses/epochs": float(epoch), "losses/replay_error": replay},
        )


@dataclass
class Loss:
    """One minibatch's loss and what the update reports of it."""

    total: torch.Tensor  # the loss the gradient step descends
    logprobs: torch.Tensor  # log pi(a_t|h_t) replayed (detached)
    stats: dict[str, torch.Tensor]  # policy_loss, value_loss, entropy, approx_kl, clip_fraction (detached)


def loss_of(
    dist: ActionDist, logits: torch.Tensor, values: torch.Tensor, mb: Sequences, clip: float, spec: TrainSpec
) -> Loss:
    """PPO's loss over the minibatch's masked steps: compiled where it can be, else `ppo_loss`."""
    if fused_ppo_loss.applies(dist, logits):
        return Loss(*fused_ppo_loss.ppo_loss(logits, values, mb, clip, spec))
    return ppo_loss(dist, logits, values, mb, clip, spec)


def ppo_loss(
    dist: ActionDist, logits: torch.Tensor, values: torch.Tensor, mb: Sequences, clip: float, spec: TrainSpec
) -> Loss:
    """The clipped surrogate, value and entropy terms (the module docstring's loss)."""
    logprobs = dist.log_prob(logits, mb.actions)
    log_ratio = logprobs - mb.logprobs
    ratio = log_ratio.exp()
    adv = normalize(mb.advantages, mb.mask) if spec.normalize_advantages else mb.advantages
    policy_loss = masked_mean(torch.max(-adv * ratio, -adv * ratio.clamp(1 - clip, 1 + clip)), mb.mask)
    value_loss = 0.5 * masked_mean((values - mb.returns) ** 2, mb.mask)
    entropy = masked_mean(dist.entropy(logits), mb.mask)
    with torch.no_grad():  # of the policy before this minibatch's step, as CleanRL
        approx_kl = masked_mean((ratio - 1) - log_ratio, mb.mask)
        clip_fraction = masked_mean(((ratio - 1).abs() > clip).float(), mb.mask)
    return Loss(
        total=policy_loss + spec.vf_coef * value_loss - spec.ent_coef * entropy,
        logprobs=logprobs.detach(),
        stats={
            "policy_loss": policy_loss.detach(),
            "value_loss": value_loss.detach(),
            "entropy": entropy.detach(),
            "approx_kl": approx_kl,
            "clip_fraction": clip_fraction,
        },
    )
