"""Allowed environments and the vectorised environment factory.

Only the ids in ``ENVS`` can be built; each maps to a fixed builder function in one family
module (``classic``, ``memory_tasks``, ``atari``, ``popgym``; the ``pomdp`` transforms make
partially observed variants), so a job spec can never name arbitrary code to import.
``EnvOptions`` carries per-job settings (frame stack, sticky actions, episodic life,
flicker, previous action); an option that does not apply to an env is refused.

Every env from ``make_vec_env`` follows one contract, which the rollout code relies on:

- observations: array of shape ``(num_envs, *single_observation_space.shape)`` in the
  dtype of ``single_observation_space``: float32 for vector envs, uint8 for pixel envs
  (``EnvInfo.pixels``), whose single observation is ``(C, H, W)``. POPGym's discrete and
  tuple observations arrive flattened (one-hot, see ``rlcore.envs.spaces``). Actions: int
  array of shape ``(num_envs,)`` for Discrete action spaces; the continuous and a few POPGym envs take
  MultiDiscrete (int ``(num_envs, k)``) or Box (float ``(num_envs, d)``) actions. Rewards:
  float32 array of shape ``(num_envs,)`` (Atari: the raw game score, never clipped);
  terminated / truncated: bool arrays of shape ``(num_envs,)``.
- SAME-STEP autoreset: when env ``i`` ends at a step, ``obs[i]`` returned by that step is
  already the first observation of its next episode. The last observation of the ended
  episode is row ``i`` of ``info["final_obs"]`` (same dtype and shape as ``obs``), valid
  where the bool mask ``info["_final_obs"]`` is True. ``step`` always returns both keys.
- Atari steps also return ``info["game_over"]`` (bool ``(num_envs,)``): the whole game
  ended. With ``EnvOptions(episodic_life=True)`` a lost life is a ``terminated`` step
  while the game goes on (its ``final_obs`` row is the observation itself); an episode's
  score then runs up to ``game_over``. Without it ``game_over == terminated | truncated``.
- Seeded by the factory: ``reset(seed=seed)`` (or ``reset()`` right after the factory)
  and the same actions give the same trajectory, including the flicker noise.

- Partially observed envs say what they hide: ``hidden_variables(envs)`` and
  ``hidden_values(envs)`` (``rlcore.envs.hidden``) give, per env, each hidden variable's
  value for the last observation and whether that observation shows it. Classic envs
  also draw themselves: ``envs.render()`` gives one ``rgb_array`` frame per env.

``get_env_state`` / ``set_env_state`` save and restore everything that decides future
steps, as plain Python types, so a trainer can resume a run bit-for-bit. The last
observation handed to the caller is not part of it: the caller keeps its own.

Importing this package loads neither ALE, popgym nor torch: ``rlcore.spec`` and the API use it.
"""

from __future__ import annotations

# The family modules register their builders with the registry when imported.
from rlcore.envs import atari, classic, memory_tasks, popgym  # noqa: F401
from rlcore.envs.hidden import HiddenValues, HiddenVariable, hidden_values, hidden_variables
from rlcore.envs.memory_tasks import CueRecallPixelsVectorEnv, CueRecallVectorEnv
from rlcore.envs.registry import (
    ATARI_GAMES,
    CUE_RECALL_DELAY,
    CUE_RECALL_PIXELS_DELAY,
    ENVS,
    FLICKER_PROB,
    POPGYM_ENVS,
    AtariGame,
    EnvInfo,
    EnvOptions,
    EnvStateNotSupported,
    PopgymEnv,
    check_options,
    get_env_state,
    make_vec_env,
    observation_shape,
    set_env_state,
    supports_state,
)

__all__ = [
    "ATARI_GAMES",
    "CUE_RECALL_DELAY",
    "CUE_RECALL_PIXELS_DELAY",
    "ENVS",
    "FLICKER_PROB",
    "POPGYM_ENVS",
    "AtariGame",
    "CueRecallPixelsVectorEnv",
    "CueRecallVectorEnv",
    "EnvInfo",
    "EnvOptions",
    "EnvStateNotSupported",
    "HiddenValues",
    "HiddenVariable",
    "PopgymEnv",
    "check_options",
    "get_env_state",
    "hidden_values",
    "hidden_variables",
    "make_vec_env",
    "observation_shape",
    "set_env_state",
    "supports_state",
]
