"""Synchronous advantage actor-critic (A2C; Mnih et al. 2016) with GAE returns.

for each update:
    play num_envs x rollout_length steps, carrying each env's memory state
    A_t = GAE(gamma, lambda) from the critic, bootstrapping time-limit truncations
    replay the rollout chunk by chunk from each chunk's stored first state (truncated BPTT)
    loss = -mean(A_t log pi(a_t|h_t)) + c_v * mean((V(h_t) - R_t)^2) / 2 - beta * entropy
    one gradient step per minibatch; report the losses averaged over the minibatches
"""

from __future__ import annotations

from rlcore.algos.common import Means, masked_mean, normalize, replay_error
from rlcore.device import autocast
from rlcore.run import Run


def train(run: Run) -> None:
    spec, policy = run.spec, run.policy
    while not run.finished():
        run.anneal()
        rollout = run.collector.collect(spec.rollout_length, spec.chunk_length)
        advantages, returns = rollout.gae(spec.gamma, spec.gae_lambda)
        batch = rollout.sequences(advantages, returns, spec.chunk_length)

        update = Means()
        for i, mb in enumerate(batch.minibatches(spec.minibatches)):
            with autocast(run.device, spec.bf16):
                logits, values, _ = policy(mb.obs, mb.initial_states, mb.episode_starts)
            logprobs = policy.dist.log_prob(logits, mb.actions)
            if i == 0:
                replay = replay_error(logprobs.detach(), mb.logprobs, mb.mask)
            adv = normalize(mb.advantages, mb.mask) if spec.normalize_advantages else mb.advantages
            policy_loss = -masked_mean(adv * logprobs, mb.mask)
            value_loss = 0.5 * masked_mean((values - mb.returns) ** 2, mb.mask)
            entropy = masked_mean(policy.dist.entropy(logits), mb.mask)
            run.optimize(policy_loss + spec.vf_coef * value_loss - spec.ent_coef * entropy)
            update.add(policy_loss=policy_loss, value_loss=value_loss, entropy=entropy)

        run.end_update(rollout.episodes, {**update.means("losses/"), "losses/replay_error": replay})
