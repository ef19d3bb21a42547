"""REINFORCE with an entropy bonus (Williams 1992), the forum thread's algorithm done right.

for each update:
    play num_envs x rollout_length steps, carrying each env's memory state
    G_t = sum_k gamma^k r_{t+k}        (Monte Carlo, within the episode)
    replay each column from the state that went into its first step, resetting the
    state at episode starts, so log pi(a_t | h_t) is exactly what the agent acted with
    loss = -mean(G_t * log pi(a_t | h_t)) - beta * entropy    over complete episodes
"""

from __future__ import annotations

from rlcore import distributions
from rlcore.algos.common import masked_mean, normalize, replay_error
from rlcore.returns import discounted_returns
from rlcore.trainer import Run


def train(run: Run) -> None:
    spec, policy = run.spec, run.policy
    while not run.finished():
        run.anneal()
        rollout = run.collector.collect(spec.rollout_length)
        returns, complete = discounted_returns(rollout.rewards, rollout.dones, spec.gamma)
        # Steps of episodes still running at the end of the rollout have no return yet;
        # they are left out here and their episode is trained in the next rollout.
        mask = complete.float()
        weights = normalize(returns, mask) if spec.normalize_advantages else returns
        batch = rollout.sequences(weights, returns, spec.bptt_length or spec.rollout_length, mask)

        for i, mb in enumerate(batch.minibatches(spec.minibatches)):
            logits, _, _ = policy(mb.obs, mb.initial_states, mb.episode_starts)
            logprobs = distributions.log_prob(logits, mb.actions)
            if i == 0:
                replay = replay_error(logprobs.detach(), mb.logprobs, mb.mask)
            policy_loss = -masked_mean(mb.advantages * logprobs, mb.mask)
            entropy = masked_mean(distributions.entropy(logits), mb.mask)
            run.optimize(policy_loss - spec.ent_coef * entropy)

        run.end_update(
            rollout,
            {
                "losses/policy_loss": policy_loss.item(),
                "losses/entropy": entropy.item(),
                "losses/replay_error": replay,
            },
        )
