"""Atari 2600 games through ale-py's C++ vector env, under the package contract.

What ALE 0.12's ``AtariVectorEnv`` does (read in its source and checked by experiment),
and why this module drives it the way it does:

- ``episodic_life=True`` ends the episode at a life loss and the autoreset that follows
  restarts the whole game (lives back to full), so an agent would never see its second
  life. ``life_loss_info=True`` flags a life loss as ``terminated`` and lets the game go
  on, but the same flag marks a game over. So ALE runs with both off, and this module
  compares ``info["lives"]`` between steps (ALE's own rule: fewer lives, but not zero).
- With ``autoreset_mode="SameStep"`` the step that ends a game already returns the next
  game's first frames; ``info["final_obs"]`` (present only when some game ended) holds
  the last stack. A reset clears the frame stack: the first observation is zeros but for
  its last frame.
- A reset with a seed reloads the ROM, which costs 0.1-0.25 s per env (measured on a busy
  2-core machine) and blocks the whole batch; a reset without one (the autoreset) is
  ~10 ms and continues the env's own RNGs (sticky actions, no-op count). Both are
  deterministic: an env's frames are a function of the seed of its last seeded reset and
  of every action since, whatever the other envs do.
- ALE cannot clone a vector env's state. So each env's state is (seed of its last seeded
  reset, actions since), and ``set_state`` rebuilds it by replaying. Reseeding at every
  game end would bound the replay by one game but cost a ROM load per game; reseeding at
  the first game end after ``reseed_after`` steps bounds the replay by ``reseed_after``
  plus one game at a fraction of the cost (``RESEED_AFTER_STEPS``; 0 reseeds every game).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv

from rlcore.envs.pomdp import FlickerObservation
from rlcore.envs.registry import (
    ATARI_FRAME_SIZE,
    ATARI_FRAME_SKIP,
    ATARI_GAMES,
    ATARI_MAX_FRAMES,
    EnvInfo,
    EnvOptions,
    register_builders,
)
from rlcore.envs.state import (
    Array,
    StepResult,
    _check_state,
    _decode_bytes,
    _encode_bytes,
    _rng_state,
    _set_rng_state,
)

if TYPE_CHECKING:
    from ale_py import AtariVectorEnv

# A checkpoint resume replays at most this many steps plus one game per env. Measured on a
# busy 2-core machine, Breakout, 8 envs, random play, 2000 steps (86 games ended): 26.5 s
# when reseeding at every game end, 8.4 s with 10,000; replaying 2000 steps of 8 envs: 9.1 s.
RESEED_AFTER_STEPS = 10_000
NOOP_MAX = 30
NOOP = 0  # index of NOOP in every minimal action set
_SEED_BOUND = 2**31 - 1  # ALE seeds are non-negative C ints; -1 means "unseeded"


class _ActionLog:
    """Per env, the actions it took since its last seeded reset, in one growing (T, N) table."""

    def __init__(self, num_envs: int) -> None:
        self._table = np.zeros((256, num_envs), dtype=np.uint8)
        self._end = 0
        self._starts = np.zeros(num_envs, dtype=np.int64)

    def append(self, actions: Array) -> None:
        if self._end == len(self._table):
            self._make_room()
        self._table[self._end] = actions
        self._end += 1

    def restart(self, mask: Array) -> None:
        """Start empty logs for the envs in ``mask`` (they were just reset with a seed)."""
        self._starts[mask] = self._end

    def lengths(self) -> Array:
        return self._end - self._starts

    def actions(self, env: int) -> Array:
        return self._table[self._starts[env] : self._end, env].copy()

    def load(self, actions: list[Array]) -> None:
        """Replace every log, ending all of them now (as ``set_state`` replays them)."""
        lengths = np.array([len(a) for a in actions], dtype=np.int64)
        self._end = int(lengths.max())
        self._table = np.zeros((max(256, 2 * self._end), len(actions)), dtype=np.uint8)
        self._starts = self._end - lengths
        for env, env_actions in enumerate(actions):
            self._table[self._starts[env] : self._end, env] = env_actions

    def _make_room(self) -> None:
        # Rows before the oldest log are nobody's; drop them, and grow if still over half full.
        kept = self._table[self._starts.min() : self._end]
        table = np.zeros((max(len(self._table), 2 * len(kept)), self._table.shape[1]), dtype=np.uint8)
        table[: len(kept)] = kept
        self._starts -= self._end - len(kept)
        self._table, self._end = table, len(kept)


class AtariVecEnv(VectorEnv):
    """``num_envs`` games of one Atari ROM with ALE v5 settings and exact save/restore.

    Frame skip 4 with max-pooling of the last two frames, 84x84 grayscale, up to 30
    no-ops and FIRE at each reset, sticky actions, 108,000 frames per game at most, raw
    (unclipped) rewards. Observations are uint8 frame stacks (N, frame_stack, 84, 84).
    Every step's info has ``game_over`` (N,): the whole game ended; with
    ``episodic_life`` a lost life is also a ``terminated`` step (the game goes on, so its
    ``final_obs`` row equals the observation), otherwise ``game_over`` equals
    ``terminated | truncated``. ``info["lives"]`` gives the lives left.
    """

    metadata: ClassVar[dict[str, Any]] = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(
        self, env_id: str, num_envs: int, options: EnvOptions, reseed_after: int = RESEED_AFTER_STEPS
    ) -> None:
        # Imported here: loading ALE is for the workers that play, never for the API.
        from ale_py import AtariVectorEnv

        self.env_id = env_id
        self.options = options
        self.reseed_after = reseed_after
        self._ale: AtariVectorEnv = AtariVectorEnv(
            ATARI_GAMES[env_id].rom,
            num_envs,
            num_threads=min(num_envs, os.cpu_count() or 1),
            max_num_frames_per_episode=ATARI_MAX_FRAMES,
            repeat_action_probability=options.repeat_action_probability,
            autoreset_mode=AutoresetMode.SAME_STEP,
            img_height=ATARI_FRAME_SIZE,
            img_width=ATARI_FRAME_SIZE,
            grayscale=True,
            stack_num=options.frame_stack,
            frameskip=ATARI_FRAME_SKIP,
            maxpool=True,
            noop_max=NOOP_MAX,
            episodic_life=False,
            life_loss_info=False,
            reward_clipping=False,
            use_fire_reset=True,
        )
        self.num_envs = num_envs
        self.single_observation_space = self._ale.single_observation_space
        self.single_action_space = self._ale.single_action_space
        self.observation_space = self._ale.observation_space
        self.action_space = self._ale.action_space
        self._num_actions = int(self.single_action_space.n)
        self._seed_rngs = self._spawn_seed_rngs(np.random.SeedSequence())
        self._seeds = np.full(num_envs, -1, dtype=np.int64)  # of each env's last seeded reset
        self._log = _ActionLog(num_envs)
        self._lives = np.zeros(num_envs, dtype=np.int64)
        self._ready = False  # ALE refuses to step before a full reset
        # (seed, obs, info) of a seeded full reset that no step has followed yet: the same
        # reset again is answered from it instead of reloading every ROM.
        self._fresh: tuple[int, Array, dict[str, Any]] | None = None

    # --- seeding ------------------------------------------------------------------

    def _spawn_seed_rngs(self, seed_sequence: np.random.SeedSequence) -> list[np.random.Generator]:
        # One generator per env, so env i's games depend on (seed, i) but not on num_envs.
        return [np.random.default_rng(child) for child in seed_sequence.spawn(self.num_envs)]

    def _next_seeds(self, mask: Array) -> Array:
        return np.array(
            [self._seed_rngs[i].integers(0, _SEED_BOUND) for i in np.flatnonzero(mask)], dtype=np.int64
        )

    def _seeded_reset(self, mask: Array, seeds: Array) -> tuple[Array, dict[str, Any]]:
        if not self._ready:
            # ALE refuses a partial reset before a full one; an unseeded one is cheap.
            self._ale.reset()
            self._ready = True
        obs, info = self._ale.reset(seed=seeds, options={"reset_mask": mask})
        self._seeds[mask] = seeds
        self._log.restart(mask)
        return obs, info

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Array, dict[str, Any]]:
        """Start new games in every env; with ``seed``, games and sticky actions are seeded."""
        if options:
            raise ValueError(f"reset options are not supported, got {sorted(options)}")
        if seed is not None and self._fresh is not None and self._fresh[0] == seed:
            _, obs, info = self._fresh
            return obs.copy(), {"lives": info["lives"].copy()}
        if seed is not None:
            self._seed_rngs = self._spawn_seed_rngs(np.random.SeedSequence(seed))
        everyone = np.ones(self.num_envs, dtype=np.bool_)
        obs, info = self._seeded_reset(everyone, self._next_seeds(everyone))
        self._lives = info["lives"].astype(np.int64)
        self._fresh = None if seed is None else (seed, obs.copy(), {"lives": self._lives.copy()})
        return obs, {"lives": self._lives.copy()}

    # --- stepping -----------------------------------------------------------------

    def step(self, actions: Array) -> StepResult:
        actions = np.asarray(actions)
        if (
            actions.shape != (self.num_envs,)
            or actions.dtype.kind not in "iu"
            or actions.min() < 0
            or actions.max() >= self._num_actions
        ):
            raise ValueError(f"invalid actions {actions!r} for {self.action_space}")
        if not self._ready:
            raise RuntimeError("reset the env before stepping it")
        self._fresh = None
        actions = actions.astype(np.int64, copy=False)
        obs, reward, terminated, truncated, info = self._ale.step(actions)
        self._log.append(actions)
        game_over = terminated | truncated
        lives = info["lives"].astype(np.int64)
        final_obs = np.zeros_like(obs)
        if game_over.any():
            final_obs[game_over] = info["final_obs"][game_over]
        life_lost = np.zeros(self.num_envs, dtype=np.bool_)
        if self.options.episodic_life:
            life_lost = (lives < self._lives) & (lives > 0) & ~game_over
            final_obs[life_lost] = obs[life_lost]
        reseed = game_over & (self._log.lengths() >= self.reseed_after)
        if reseed.any():
            # ALE has already started the next game unseeded; replace it with a seeded one.
            reset_obs, reset_info = self._seeded_reset(reseed, self._next_seeds(reseed))
            obs[reseed] = reset_obs[reseed]
            lives[reseed] = reset_info["lives"][reseed]
        self._lives = lives
        ended = game_over | life_lost
        step_info = {
            "final_obs": final_obs,
            "_final_obs": ended,
            "game_over": game_over,
            "lives": lives.copy(),
        }
        return obs, reward.astype(np.float32), terminated | life_lost, truncated, step_info

    def close_extras(self, **kwargs: Any) -> None:
        # Dropping ALE's vector env joins its worker threads.
        del self._ale

    # --- state --------------------------------------------------------------------

    def _kind(self) -> str:
        o = self.options
        return (
            f"Atari({self.env_id}, frame_stack={o.frame_stack}, "
            f"repeat_action_probability={o.repeat_action_probability}, "
            f"episodic_life={o.episodic_life}, reseed_after={self.reseed_after})"
        )

    def get_state(self) -> dict[str, Any]:
        if not self._ready:
            raise RuntimeError("reset the env before saving its state")
        return {
            "kind": self._kind(),
            "num_envs": self.num_envs,
            "seeds": [int(s) for s in self._seeds],
            "actions": [_encode_bytes(self._log.actions(i)) for i in range(self.num_envs)],
            "lives": [int(n) for n in self._lives],
            "seed_rngs": [_rng_state(rng) for rng in self._seed_rngs],
        }

    def set_state(self, state: dict[str, Any]) -> None:
        _check_state(state, self._kind(), self.num_envs)
        seeds = np.array(state["seeds"], dtype=np.int64)
        actions = [_decode_bytes(text) for text in state["actions"]]
        self._replay(seeds, actions)
        self._log.load(actions)
        self._lives = np.array(state["lives"], dtype=np.int64)
        for rng, rng_state in zip(self._seed_rngs, state["seed_rngs"], strict=True):
            _set_rng_state(rng, rng_state)
        self._fresh = None

    def _replay(self, seeds: Array, actions: list[Array]) -> None:
        """Bring every env to the end of its log, all in one pass of lockstep batched steps.

        Env i idles (NOOP, whatever happens to its game meanwhile) until ``total -
        len(actions[i])`` steps have passed, is then reset with its seed and replays its
        actions, so that all envs reach the saved point at the last step.
        """
        lengths = np.array([len(a) for a in actions], dtype=np.int64)
        total = int(lengths.max())
        starts = total - lengths
        plan = np.full((total, self.num_envs), NOOP, dtype=np.int64)
        for env, env_actions in enumerate(actions):
            plan[starts[env] :, env] = env_actions
        for t in range(total + 1):
            if (starting := starts == t).any():
                self._seeded_reset(starting, seeds[starting])
            if t < total:
                self._ale.step(plan[t])


def _atari(info: EnvInfo, num_envs: int, options: EnvOptions) -> VectorEnv:
    envs = AtariVecEnv(info.id, num_envs, options)
    return FlickerObservation(envs, options.flicker) if options.flicker > 0 else envs


BUILDERS = dict.fromkeys(ATARI_GAMES, _atari)
register_builders("atari", BUILDERS)
