"""Evaluate a policy: returns over a fixed number of episodes, on envs seeded apart from training's.

`EpisodeRunner` plays a fixed number of episodes on a few parallel envs and says which
steps belong to an episode that counts; `run_episodes` (returns) and
`rlcore.replay.record_episodes` (everything the policy did) are built on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

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


MAX_ENVS = 16


@dataclass(frozen=True)
class RunnerStep:
    """What one `EpisodeRunner.step` did, per env (bool arrays but `reward`)."""

    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    ended: np.ndarray  # an episode ended (for Atari: the whole game)
    cut: np.ndarray  # a counted episode reached max_steps and stops counting
    finished: np.ndarray  # a counted episode ended or was cut: it is one of the `episodes`


class EpisodeRunner:
    """Plays `episodes` episodes of `env_id`, seeded by `seed`, on up to 16 envs at once.

    Each env plays an equal share so that short episodes don't dominate. `counting` says,
    per env, whether its current episode is one of them (its steps are to be kept): after
    an env has played its share its further episodes are not. With `max_steps`, an
    episode is cut (`RunnerStep.cut`) and counted after that many steps; its env then
    plays the episode out uncounted. Observations and episode starts for the next
    actions are `obs` and `starts`; an Atari episode is the whole game
    (`info["game_over"]`), also where a lost life ends the episode for learning.
    """

    def __init__(
        self,
        env_id: str,
        episodes: int,
        seed: int,
        options: EnvOptions | None = None,
        max_steps: int | None = None,
    ) -> None:
        if episodes < 1:
            raise ValueError(f"episodes must be at least 1, got {episodes}")
        num_envs = min(episodes, MAX_ENVS)
        self.quota = np.full(num_envs, episodes // num_envs) + (np.arange(num_envs) < episodes % num_envs)
        self.max_steps = max_steps
        self.envs = make_vec_env(env_id, num_envs, seed, options)
        self.obs, _ = self.envs.reset(seed=seed)
        self.starts = np.ones(num_envs, dtype=bool)
        self.counting = self.quota > 0
        self.length = np.zeros(num_envs, dtype=np.int64)  # steps into the current episode

    @property
    def done(self) -> bool:
        """Whether every counted episode has finished."""
        return not self.quota.any()

    def step(self, actions: np.ndarray) -> RunnerStep:
        """Step every env with `actions` (for `obs`) and account for the episodes."""
        self.obs, reward, terminated, truncated, info = self.envs.step(actions)
        self.starts = terminated | truncated
        ended = info.get("game_over", self.starts)
        self.length += 1
        cut = np.zeros_like(ended)
        if self.max_steps is not None:
            cut = ~ended & self.counting & (self.length >= self.max_steps)
        finished = (ended | cut) & self.counting
        self.quota[finished] -= 1
        self.counting = np.where(ended, self.quota > 0, self.counting & ~cut)
        self.length[ended] = 0
        return RunnerStep(reward, terminated, truncated, ended, cut, finished)

    def close(self) -> None:
        self.envs.close()

    def __enter__(self) -> EpisodeRunner:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def run_episodes(
    act: ActFn, env_id: str, episodes: int, seed: int, options: EnvOptions | None = None
) -> list[float]:
    """Returns of `episodes` episodes; each env plays an equal share so short ones don't dominate.

    An Atari episode is the whole game (`info["game_over"]`), also where a lost life
    ends the episode for learning.
    """
    returns: list[float] = []
    with EpisodeRunner(env_id, episodes, seed, options) as runner:
        running = np.zeros(len(runner.quota))
        while not runner.done:
            step = runner.step(act(runner.obs, runner.starts))
            running += step.reward
            returns.extend(float(running[i]) for i in np.flatnonzero(step.finished))
            running[step.ended] = 0.0
    return returns


@dataclass(frozen=True)
class PolicyStep:
    """One acting step of a torch policy for a batch of B envs (tensors on the policy's device)."""

    actions: np.ndarray  # as sent to the envs
    params: torch.Tensor  # (B, P): the action distribution's parameters
    value: torch.Tensor  # (B,)
    state: torch.Tensor  # (B, *state_shape): the memory after the step
    features: torch.Tensor  # (B, out_features): the core's output, what the heads read


@torch.no_grad()
def policy_step(
    policy: ActorCritic,
    obs: np.ndarray,
    starts: np.ndarray,
    state: torch.Tensor,
    generator: torch.Generator | None = None,
    deterministic: bool = False,
) -> PolicyStep:
    """Act once: the memory of the envs in `starts` is zeroed first, as in training."""
    device = state.device
    obs_t = torch.as_tensor(obs, device=device)[None]
    starts_t = torch.as_tensor(starts, device=device)[None]
    params, value, state, features = policy.forward_with_features(obs_t, state, starts_t)
    dist = policy.dist
    raw = dist.deterministic(params[0]) if deterministic else dist.sample(params[0], generator)
    return PolicyStep(dist.to_env(raw).cpu().numpy(), params[0], value[0], state, features[0])


def torch_policy_actor(
    policy: ActorCritic,
    device: torch.device,
    generator: torch.Generator | None = None,
    deterministic: bool = False,
) -> ActFn:
    """An ActFn over a torch policy: the most likely actions, or ones sampled from `generator`
    (its own, so the training RNG is left untouched)."""
    state: torch.Tensor | None = None

    def act(obs: np.ndarray, starts: np.ndarray) -> np.ndarray:
        nonlocal state
        if state is None:
            state = policy.initial_state(len(obs), device)
        step = policy_step(policy, obs, starts, state, generator, deterministic)
        state = step.state
        return step.actions

    return act
