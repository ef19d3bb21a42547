"""Action distributions on raw head outputs, without torch.distributions' overhead.

Acting calls these once per env step, where torch.distributions' argument checks and
object construction cost more than the network itself.

A policy's head emits one `params` tensor (..., P) whatever its action space; an
`ActionDist`, chosen by the policy config's action spec, reads it:

- ``discrete`` (Discrete(n)): P = n logits; actions (...) int64.
- ``multi_discrete`` (MultiDiscrete(nvec)): the logits of every dimension concatenated,
  P = sum(nvec); independent categoricals, so log-probs and entropies are summed over
  the dimensions; actions (..., k) int64.
- ``gaussian`` (Box(low, high, (d,))): a diagonal Gaussian, P = 2d, the mean then the
  (state-independent) log-std; actions (..., d) float32. The stored action is the raw
  Gaussian sample u, and what the env gets is `to_env(u)`: with ``squash`` "clip",
  u clipped to the bounds (log-probs of the unclipped u, as SB3/CleanRL PPO); with
  "tanh", low + (tanh(u) + 1) / 2 * (high - low), whose log-prob carries the tanh
  Jacobian. Storing u, not the squashed action, keeps the log-prob exact near the
  bounds (no atanh of a saturated action). The "tanh" entropy is the Gaussian's (the
  squashed one has no closed form).

The module-level `sample`, `log_prob` and `entropy` are the discrete ones, for callers
that predate the other kinds.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import torch
import torch.nn.functional as F

KINDS = ("discrete", "multi_discrete", "gaussian")
SQUASH_MODES = ("clip", "tanh")
_LOG_2PI = math.log(2 * math.pi)
_LOG_2 = math.log(2.0)


def sample(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One action per row of logits (..., A), drawn from softmax(logits)."""
    probs = F.softmax(logits.reshape(-1, logits.shape[-1]), dim=-1)
    return torch.multinomial(probs, 1, generator=generator).reshape(logits.shape[:-1])


def log_prob(logits: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """log pi(a) for each action."""
    return F.log_softmax(logits, dim=-1).gather(-1, actions.unsqueeze(-1)).squeeze(-1)


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of each row's distribution."""
    log_p = F.log_softmax(logits, dim=-1)
    return -(log_p.exp() * log_p).sum(-1)


class ActionDist(Protocol):
    """The distribution of one action space, on the head's `params` (..., param_size)."""

    head_size: int  # outputs of the linear policy head
    param_size: int  # width of `params` (the head, plus the log-std for gaussian)
    action_shape: tuple[int, ...]  # one env's action: () or (k,) or (d,)
    dtype: torch.dtype  # of stored actions

    def sample(self, params: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor: ...

    def log_prob(self, params: torch.Tensor, actions: torch.Tensor) -> torch.Tensor: ...

    def entropy(self, params: torch.Tensor) -> torch.Tensor: ...

    def deterministic(self, params: torch.Tensor) -> torch.Tensor:
        """The most likely action, as stored (raw, before `to_env`)."""
        ...

    def to_env(self, actions: torch.Tensor) -> torch.Tensor:
        """What the env is sent for stored actions."""
        ...


class Categorical:
    """Discrete(n)."""

    dtype = torch.long
    action_shape: tuple[int, ...] = ()

    def __init__(self, n: int) -> None:
        self.head_size = self.param_size = int(n)

    def sample(self, params: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return sample(params, generator)

    def log_prob(self, params: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return log_prob(params, actions)

    def entropy(self, params: torch.Tensor) -> torch.Tensor:
        return entropy(params)

    def deterministic(self, params: torch.Tensor) -> torch.Tensor:
        return params.argmax(-1)

    def to_env(self, actions: torch.Tensor) -> torch.Tensor:
        return actions


class MultiCategorical:
    """MultiDiscrete(nvec): independent categoricals over concatenated logits."""

    dtype = torch.long

    def __init__(self, nvec: list[int] | tuple[int, ...]) -> None:
        self.nvec = [int(n) for n in nvec]
        self.head_size = self.param_size = sum(self.nvec)
        self.action_shape = (len(self.nvec),)

    def _split(self, params: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return params.split(self.nvec, dim=-1)

    def sample(self, params: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.stack([sample(p, generator) for p in self._split(params)], dim=-1)

    def log_prob(self, params: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        parts = [log_prob(p, actions[..., i]) for i, p in enumerate(self._split(params))]
        return torch.stack(parts, dim=-1).sum(-1)

    def entropy(self, params: torch.Tensor) -> torch.Tensor:
        return torch.stack([entropy(p) for p in self._split(params)], dim=-1).sum(-1)

    def deterministic(self, params: torch.Tensor) -> torch.Tensor:
        return torch.stack([p.argmax(-1) for p in self._split(params)], dim=-1)

    def to_env(self, actions: torch.Tensor) -> torch.Tensor:
        return actions


class DiagGaussian:
    """Box(low, high, (d,)): a diagonal Gaussian, params = (mean, log_std)."""

    dtype = torch.float32

    def __init__(self, low: list[float], high: list[float], squash: str = "clip") -> None:
        if squash not in SQUASH_MODES:
            raise ValueError(f"squash must be one of {SQUASH_MODES}, got {squash!r}")
        if len(low) != len(high) or not low:
            raise ValueError(f"low and high must be non-empty and of one length, got {low}, {high}")
        self.dim = len(low)
        self.head_size = self.dim
        self.param_size = 2 * self.dim
        self.action_shape = (self.dim,)
        self.squash = squash
        self.low = torch.tensor(low, dtype=torch.float32)
        self.high = torch.tensor(high, dtype=torch.float32)
        # The tanh rescaling's scale (high - low) / 2 enters every log-prob as a constant.
        self._log_scale = float(torch.log((self.high - self.low) / 2).sum()) if squash == "tanh" else 0.0

    def _split(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return params[..., : self.dim], params[..., self.dim :]

    def sample(self, params: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        mean, log_std = self._split(params)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + log_std.exp() * noise

    def log_prob(self, params: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        mean, log_std = self._split(params)
        z = (actions - mean) * torch.exp(-log_std)
        normal = (-0.5 * z**2 - log_std - 0.5 * _LOG_2PI).sum(-1)
        if self.squash == "clip":
            return normal
        # log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)): finite where tanh saturates.
        jacobian = 2.0 * (_LOG_2 - actions - F.softplus(-2.0 * actions))
        return normal - jacobian.sum(-1) - self._log_scale

    def entropy(self, params: torch.Tensor) -> torch.Tensor:
        _, log_std = self._split(params)
        return (log_std + 0.5 * (1.0 + _LOG_2PI)).sum(-1)

    def deterministic(self, params: torch.Tensor) -> torch.Tensor:
        return self._split(params)[0]

    def to_env(self, actions: torch.Tensor) -> torch.Tensor:
        low, high = self.low.to(actions.device), self.high.to(actions.device)
        if self.squash == "clip":
            return torch.maximum(torch.minimum(actions, high), low)
        return low + (torch.tanh(actions) + 1.0) * 0.5 * (high - low)


def discrete_spec(n: int) -> dict[str, Any]:
    """The action spec of Discrete(n)."""
    return {"kind": "discrete", "n": int(n)}


def multi_discrete_spec(nvec: list[int] | tuple[int, ...]) -> dict[str, Any]:
    """The action spec of MultiDiscrete(nvec)."""
    return {"kind": "multi_discrete", "nvec": [int(n) for n in nvec]}


def gaussian_spec(low: list[float], high: list[float], squash: str = "clip") -> dict[str, Any]:
    """The action spec of a Box(low, high) of one dimension per entry."""
    return {
        "kind": "gaussian",
        "low": [float(x) for x in low],
        "high": [float(x) for x in high],
        "squash": squash,
    }


def action_spec_of(space: Any, squash: str = "clip") -> dict[str, Any]:
    """The action spec of a Gymnasium space: Discrete, MultiDiscrete (1-D) or a 1-D Box."""
    from gymnasium import spaces  # not at import: the algorithms need no gymnasium

    if isinstance(space, spaces.Discrete):
        if int(space.start) != 0:
            raise ValueError(f"Discrete actions must start at 0, got {space}")
        return discrete_spec(int(space.n))
    if isinstance(space, spaces.MultiDiscrete):
        if space.nvec.ndim != 1 or (space.start != 0).any():
            raise ValueError(f"MultiDiscrete actions must be 1-D and start at 0, got {space}")
        return multi_discrete_spec(space.nvec.tolist())
    if isinstance(space, spaces.Box):
        if len(space.shape) != 1 or not (space.is_bounded("both")):
            raise ValueError(f"Box actions must be 1-D and bounded, got {space}")
        return gaussian_spec(space.low.tolist(), space.high.tolist(), squash)
    raise ValueError(f"unsupported action space {space}: Discrete, MultiDiscrete or Box only")


def action_dist(spec: dict[str, Any]) -> ActionDist:
    """The distribution of an action spec (see `discrete_spec` and the others)."""
    kind = spec.get("kind")
    if kind == "discrete":
        return Categorical(spec["n"])
    if kind == "multi_discrete":
        return MultiCategorical(spec["nvec"])
    if kind == "gaussian":
        return DiagGaussian(spec["low"], spec["high"], spec.get("squash", "clip"))
    raise ValueError(f"unknown action kind {kind!r}; known: {', '.join(KINDS)}")
