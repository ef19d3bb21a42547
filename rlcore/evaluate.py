"""Evaluate a policy: returns over a fixed number of episodes, on envs seeded apart from training's."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from rlcore.envs import EnvOptions, make_vec_env
from rlcore.models import ActorCritic

# act(observations, episode_starts) -> actions, for a batch of envs; the callee keeps
# its own recurrent state and resets the rows whose episode starts.
ActFn = Callable[[np.ndarray, np.ndarray], np.ndarray]

# A run's training env i is seeded with seed + i, i < num_envs <= 512 (rlcore.spec), and
# an evaluation's env i with eval_seed(seed) + i, i < 16: the sets never meet, so an
# evaluation never replays the episodes training saw (nor, while seeds stay below this
# offset, those of another run's training).
EVAL_SEED_OFFSET = 1_000_000


def eval_seed(seed: int) -> int:
    """The seed of a run's evaluation envs (every evaluation plays the same episodes' starts)."""
    return seed + EVAL_SEED_OFFSET


def run_episodes(
    act: ActFn, env_id: str, episodes: int, seed: int, options: EnvOptions | None = None
) -> list[float]:
    """Returns of `episodes` episodes; each env plays an equal share so short ones don't dominate.

    An Atari episode is the whole game (`info["game_over"]`), also where a lost life
    ends the episode for learning.
    """
    num_envs = min(episodes, 16)
    quota = np.full(num_envs, episodes // num_envs) + (np.arange(num_envs) < episodes % num_envs)
    envs = make_vec_env(env_id, num_envs, seed, options)
    obs, _ = envs.reset(seed=seed)
    starts = np.ones(num_envs, dtype=bool)
    running = np.zeros(num_envs)
    returns: list[float] = []
    while quota.any():
        obs, reward, terminated, truncated, info = envs.step(act(obs, starts))
        running += reward
        starts = terminated | truncated
        ended = info.get("game_over", starts)
        for i in np.flatnonzero(ended & (quota > 0)):
            returns.append(float(running[i]))
            quota[i] -= 1
        running[ended] = 0.0
    envs.close()
    return returns


def torch_policy_actor(
    policy: ActorCritic,
    device: torch.device,
    generator: torch.Generator | None = None,
    deterministic: bool = False,
) -> ActFn:
    """An ActFn over a torch policy: the most likely actions, or ones sampled from `generator`
    (its own, so the training RNG is left untouched)."""
    state: torch.Tensor | None = None

    @torch.no_grad()
    def act(obs: np.ndarray, starts: np.ndarray) -> np.ndarray:
        nonlocal state
        if state is None:
            state = policy.initial_state(len(obs), device)
        obs_t = torch.as_tensor(obs, device=device)[None]
        starts_t = torch.as_tensor(starts, device=device)[None]
        params, _, state = policy(obs_t, state, starts_t)
        dist = policy.dist
        actions = dist.deterministic(params[0]) if deterministic else dist.sample(params[0], generator)
        return dist.to_env(actions).cpu().numpy()

    return act
