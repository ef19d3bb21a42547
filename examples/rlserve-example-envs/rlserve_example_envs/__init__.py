"""An example rlserve environment plugin: ``example/Majority-v0``, named by this package's
``rlserve.envs`` entry point (see its pyproject.toml)."""

from __future__ import annotations

from rlcore.envs.plugins import EnvPlugin
from rlserve_example_envs.majority import MajorityEnv

__all__ = ["MAJORITY", "MajorityEnv"]

MAJORITY = EnvPlugin(
    id="example/Majority-v0",
    description=(
        f"Signs (+1 or -1) are shown one a step for {MajorityEnv.LENGTH} steps; at the query, "
        "name the sign shown most often (+1 right, -1 wrong)."
    ),
    needs_memory=True,
    make_env=MajorityEnv,
    max_episode_steps=MajorityEnv.LENGTH + 1,
    solved_return=0.9,
    action_names=("minus", "plus"),
)
