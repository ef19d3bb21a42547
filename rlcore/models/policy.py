"""The actor-critic every trainer uses, whatever its memory core."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from rlcore.distributions import ActionDist, action_dist, discrete_spec
from rlcore.models.cores import MemoryCore, build_core
from rlcore.models.encoders import build_encoder, encoder_for
from rlcore.normalization import ObsNormalizer, obs_norm_config

if TYPE_CHECKING:
    from rlcore.spec import TrainSpec


def _init_layer(layer: nn.Linear, gain: float) -> nn.Linear:
    # Orthogonal weights with a small policy-head gain start the policy near uniform,
    # as CleanRL and SB3 do; it matters most for PPO.
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


class ActorCritic(nn.Module):
    """[obs normaliser ->] encoder -> memory core -> (action distribution params, value).

    forward(obs (T, B, *obs_shape), state (B, *state_shape), episode_starts (T, B))
    returns params (T, B, P), value (T, B) and the state after the last step. `params`
    are what `self.dist` (an `rlcore.distributions.ActionDist`, from the action spec)
    reads: the logits for discrete actions (P = A), the concatenated logits for
    multi-discrete ones, the mean then the state-independent log-std for Gaussian ones. Pixel
    observations stay uint8 up to the encoder, which flattens (T, B) for its
    convolutions and restores them.

    Under a CUDA autocast (`rlcore.device.autocast`) only the encoder runs in bf16: the
    memory core and the heads run in float32, so the carried state, the log-probs and
    PPO's ratio keep full precision, and the state keeps its dtype step after step.

    `obs_norm` (`rlcore.normalization.ObsNormalizer`, or None) normalises the raw
    observations before the encoder; its running statistics are buffers, in the
    state_dict and the exported graph, and change only when the collector commits them.
    """

    def __init__(
        self,
        encoder: nn.Module,
        core: MemoryCore,
        num_actions: int,
        action: dict[str, Any] | None = None,
        obs_norm: ObsNormalizer | None = None,
    ) -> None:
        super().__init__()
        self.obs_norm = obs_norm
        self.encoder = encoder
        self.core = core
        self.action_spec = discrete_spec(num_actions) if action is None else action
        self.dist: ActionDist = action_dist(self.action_spec)
        self.policy_head = _init_layer(nn.Linear(core.out_features, self.dist.head_size), 0.01)
        self.value_head = _init_layer(nn.Linear(core.out_features, 1), 1.0)
        # Gaussian: a learned log-std per action dimension, the same in every state
        # (SB3/CleanRL PPO), starting at std 1.
        self.log_std = (
            nn.Parameter(torch.zeros(self.dist.head_size)) if self.action_spec["kind"] == "gaussian" else None
        )

    @property
    def state_shape(self) -> tuple[int, ...]:
        return self.core.state_shape

    @property
    def is_recurrent(self) -> bool:
        """True when the state carries information between steps."""
        return self.core.is_recurrent

    def initial_state(self, batch: int, device: torch.device | str = "cpu") -> torch.Tensor:
        return self.core.initial_state(batch, device)

    def forward(
        self, obs: torch.Tensor, state: torch.Tensor, episode_starts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        params, value, new_state, _ = self.forward_with_features(obs, state, episode_starts)
        return params, value, new_state

    def forward_with_features(
        self, obs: torch.Tensor, state: torch.Tensor, episode_starts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """`forward`, and also the core's output (T, B, out_features): what both heads read."""
        if self.obs_norm is not None:
            obs = self.obs_norm(obs)
        features = self.encoder(obs)
        if torch.is_autocast_enabled(features.device.type):
            with torch.autocast(features.device.type, enabled=False):
                return self._core_and_heads(features.float(), state, episode_starts)
        return self._core_and_heads(features, state, episode_starts)

    def _core_and_heads(
        self, features: torch.Tensor, state: torch.Tensor, episode_starts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        out, new_state = self.core(features, state, episode_starts)
        params = self.policy_head(out)
        if self.log_std is not None:
            params = torch.cat([params, self.log_std.expand_as(params)], dim=-1)
        return params, self.value_head(out).squeeze(-1), new_state, out


def build_policy(config: dict[str, Any]) -> ActorCritic:
    """Build a policy from its JSON-able config (see `policy_config`)."""
    hidden = config["hidden_size"]
    # Policies saved before `encoder` existed all had the dense one.
    encoder = build_encoder(config.get("encoder", "dense"), config["obs_shape"], hidden)
    core = build_core(
        config["model"], encoder.features, hidden, config["num_layers"], config["window_length"]
    )
    # Configs saved before `obs_norm` existed had no normaliser.
    obs_norm = config.get("obs_norm")
    if obs_norm is not None and config.get("encoder") == "cnn":
        raise ValueError("obs_norm applies to vector observations; the cnn encoder scales its frames itself")
    normalizer = None if obs_norm is None else ObsNormalizer(config["obs_shape"], **obs_norm)
    # Configs saved before `action` existed were all Discrete(num_actions).
    return ActorCritic(encoder, core, config["num_actions"], config.get("action"), normalizer)


def policy_config(
    model: str,
    obs_shape: tuple[int, ...],
    actions: int | dict[str, Any],
    hidden_size: int,
    num_layers: int,
    window_length: int,
    encoder: str | None = None,
    normalize_obs: bool = False,
) -> dict[str, Any]:
    """Everything needed to rebuild a policy's architecture; stored next to its weights.

    `actions` is the number of Discrete actions or an action spec
    (`rlcore.distributions.action_spec_of` a space, or `discrete_spec` and the others);
    the config keeps the spec as `action` and the policy head's width as `num_actions`.
    `encoder` None picks by the observation shape: `cnn` for (C, H, W) frames, `dense`
    for vectors. `normalize_obs` puts an `ObsNormalizer` in front of the encoder; the
    config's `obs_norm` holds its clip and epsilon (None: no normaliser).
    """
    if encoder is None:
        encoder = encoder_for(obs_shape, "dense")
    action = discrete_spec(actions) if isinstance(actions, int) else dict(actions)
    return {
        "model": model,
        "obs_shape": list(obs_shape),
        "num_actions": action_dist(action).head_size,
        "action": action,
        "hidden_size": hidden_size,
        "num_layers": num_layers,
        "window_length": window_length,
        "encoder": encoder,
        "obs_norm": obs_norm_config() if normalize_obs else None,
    }


def spec_policy_config(
    spec: TrainSpec, obs_shape: tuple[int, ...], actions: int | dict[str, Any]
) -> dict[str, Any]:
    """`policy_config` of the model a training spec asks for, on envs of these spaces
    (`actions`: a number of Discrete actions or an action spec).

    Pixel envs get the `cnn` encoder whatever `spec.encoder` says (its dense/none choice
    is for vector observations).
    """
    return policy_config(
        spec.model.value,
        obs_shape,
        actions,
        spec.hidden_size,
        spec.num_layers,
        spec.window_length,
        encoder_for(obs_shape, spec.encoder),
        spec.normalize_obs,
    )
