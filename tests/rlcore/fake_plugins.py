"""Objects that the fake `rlserve.envs` entry points of tests/rlcore/test_plugins.py name.

One good plugin (a vector env of its own, with saveable state) and one of each kind of
broken plugin that `load_plugins` must log and skip.
"""

from __future__ import annotations

import gymnasium as gym
from gymnasium import spaces
from rlserve_example_envs import MajorityEnv

from rlcore.envs import CueRecallVectorEnv
from rlcore.envs.plugins import EnvPlugin
from tests.rlcore.conftest import ActionRecordingVectorEnv

SHORT_CUE_RECALL_DELAY = 2

# make_vec_env: the contract's own vector env, with get_state / set_state.
SHORT_CUE_RECALL = EnvPlugin(
    id="test/CueRecallShort-v0",
    description="CueRecall with a delay of 2 steps.",
    needs_memory=True,
    make_vec_env=lambda num_envs: CueRecallVectorEnv(num_envs, delay=SHORT_CUE_RECALL_DELAY),
    max_episode_steps=SHORT_CUE_RECALL_DELAY + 2,
)
# A built-in id: must not replace CartPole-v1.
CARTPOLE_AGAIN = EnvPlugin(
    id="CartPole-v1", description="Not the real one.", needs_memory=False, make_env=MajorityEnv
)
# The example package's id, a second time.
MAJORITY_AGAIN = EnvPlugin(
    id="example/Majority-v0", description="A second one.", needs_memory=True, make_env=MajorityEnv
)
NOT_A_PLUGIN = {"id": "test/Dict-v0", "make_env": MajorityEnv}
# Tuple observations (player sum, dealer card, usable ace): not servable.
BLACKJACK = EnvPlugin(
    id="test/Blackjack-v0",
    description="Tuple observations.",
    needs_memory=False,
    make_env=lambda: gym.make("Blackjack-v1"),
)
# A vector env whose step info has no "_final_obs".
NO_FINAL_OBS_MASK = EnvPlugin(
    id="test/NoFinalObsMask-v0",
    description="Breaks the step contract.",
    needs_memory=False,
    make_vec_env=lambda num_envs: ActionRecordingVectorEnv(num_envs, spaces.Discrete(2)),
)
