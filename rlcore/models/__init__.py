"""Policy networks: an observation encoder, a memory core and actor/critic heads."""

from rlcore.models.policy import ActorCritic, build_policy, policy_config, spec_policy_config

__all__ = ["ActorCritic", "build_policy", "policy_config", "spec_policy_config"]
