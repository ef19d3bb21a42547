"""REINFORCE with an entropy bonus (Williams 1992), the forum thread's algorithm done right.

for each update:
    play until the episodes that ended hold num_envs x rollout_length steps; an episode
        still running waits, with its env and memory state, and is trained once it ends
    G_t = sum_k gamma^k r_{t+k}         (Monte Carlo, within the episode)
    A_t = G_t - b_t, b_t = the mean G_t of the batch's episodes that reached step t
    replay every episode from the zero state it started from (whole, or in bptt_length
        chunks that carry the state), so log pi(a_t | h_t) is what the agent acted with
    loss = -mean(A_t * log pi(a_t | h_t)) - beta * entropy     over every step, once
"""

from __future__ import annotations

import torch

from rlcore.algos.common import Means, masked_mean, normalize, replay_error
from rlcore.device import autocast
from rlcore.episodes import EpisodeSequences, pack_episodes
from rlcore.models import ActorCritic
from rlcore.run import Run


def train(run: Run) -> None:
    spec, policy = run.spec, run.policy
    while not run.finished():
        run.anneal()
        collected = run.collector.collect_episodes(spec.num_envs * spec.rollout_length)
        batch = pack_episodes(collected, policy.initial_state(1, run.device), spec.gamma)
        batch.advantages = batch.returns - time_baseline(batch)
        if spec.normalize_advantages:
            batch.advantages = normalize(batch.advantages, batch.mask)

        update = Means()
        for i, mb in enumerate(batch.minibatches(min(spec.minibatches, batch.count))):
            with autocast(run.device, spec.bf16):
                logits = unroll(policy, mb, spec.bptt_length)
            logprobs = policy.dist.log_prob(logits, mb.actions)
            if i == 0:  # before the first gradient step
                replay = replay_error(logprobs.detach(), mb.logprobs, mb.fresh)
            policy_loss = -masked_mean(mb.advantages * logprobs, mb.mask)
            entropy = masked_mean(policy.dist.entropy(logits), mb.mask)
            run.optimize(policy_loss - spec.ent_coef * entropy)
            update.add(policy_loss=policy_loss, entropy=entropy)

        run.end_update(
            collected.finished,
            {
                **update.means("losses/"),  # over the minibatches
                # Over the episodes these weights played from their first step; the ones
                # begun before the last update were played by the weights before it.
                "losses/replay_error": replay,
                "charts/trained_steps": float(collected.steps),
            },
        )


def unroll(policy: ActorCritic, mb: EpisodeSequences, chunk_length: int | None) -> torch.Tensor:
    """Logits of every step, replayed from the columns' zero states; with `chunk_length`,
    gradients flow back at most that many steps (the carried state is a constant)."""
    steps = mb.obs.shape[0]
    chunk_length = chunk_length or steps
    state, logits = mb.initial_states, []
    for start in range(0, steps, chunk_length):
        part = slice(start, start + chunk_length)
        chunk_logits, _, state = policy(mb.obs[part], state, mb.episode_starts[part])
        state = state.detach()
        logits.append(chunk_logits)
    return torch.cat(logits)


def time_baseline(batch: EpisodeSequences) -> torch.Tensor:
    """b_t: the mean return at step t of the episodes that lasted that long.

    Without it, the late steps of an episode cut by a time limit have small returns and,
    normalised, push against the actions that kept the pole up that long; with it, a
    batch of episodes that all reach the limit asks for no change.
    """
    valid = batch.mask.bool()
    position, returns = batch.position[valid], batch.returns[valid]
    sums = torch.zeros(int(position.max()) + 1, device=returns.device).index_add_(0, position, returns)
    counts = torch.bincount(position, minlength=sums.shape[0]).to(returns.dtype)
    return torch.where(valid, (sums / counts)[batch.position], 0.0)
