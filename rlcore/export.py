"""Save a trained policy in portable formats, and run a saved policy outside the service.

`export_policy(policy, config, out_dir)` writes three files:

- ``policy.safetensors``: the weights (the module's state_dict). Safetensors holds raw
  tensors only, so loading a downloaded file cannot execute code, unlike a pickle.
- ``policy.json``: ``{"format_version", "config", "metadata", "onnx", "weights"}``;
  ``config`` is the `rlcore.models.policy_config` dict that rebuilds the architecture,
  ``metadata`` is free-form (env id, algorithm, spec, step, mean return...; NaN stored
  as null), ``onnx`` names the ONNX file's inputs and outputs with their shapes for
  callers in other languages.
- ``policy.onnx``: ONE step of the policy, the memory passed in and out explicitly:

  ============  ==========================  =============================================
  name          shape (float32)             present
  ============  ==========================  =============================================
  obs           (batch, *obs_shape)         always (uint8 for pixel policies, see below)
  state         (batch, *state_shape)       recurrent policies only
  logits        (batch, num_actions)        discrete and multi_discrete actions
  mean          (batch, d)                  gaussian (Box) actions
  log_std       (batch, d)                  gaussian (Box) actions
  value         (batch,)                    always
  state_out     (batch, *state_shape)       recurrent policies only
  ============  ==========================  =============================================

  The action space is ``config["action"]`` (also ``onnx.action``): ``{"kind":
  "discrete", "n"}``; ``{"kind": "multi_discrete", "nvec"}``, whose ``logits`` are every
  dimension's logits concatenated in order (softmax each ``nvec[i]``-wide slice); or
  ``{"kind": "gaussian", "low", "high", "squash"}``: sample u ~ N(mean, exp(log_std)^2)
  and send the env clip(u, low, high) (``squash`` "clip") or
  low + (tanh(u) + 1) / 2 * (high - low) (``squash`` "tanh"); deterministically, u =
  mean. Configs without ``action`` are Discrete(num_actions).

  A pixel policy (``encoder`` ``cnn``, ``obs_shape`` (C, H, W)) takes the raw uint8
  frames, exactly as the trainer stored them; the scaling to [0, 1] is inside the
  graph. ``onnx.dtypes`` in policy.json names every input's and output's dtype.

  A policy trained with ``normalize_obs`` (config ``obs_norm``: ``{"clip", "epsilon"}``)
  takes raw observations too: clip((obs - mean) / sqrt(var + epsilon), -clip, clip),
  with the running statistics it trained with, is the first step of the graph (and of
  the torch policy; the statistics are the ``obs_norm.*`` tensors of the weights).

  ``batch`` is dynamic: one file serves 1 env or 1000. The state is batch-first, exactly
  as `ActorCritic` holds it: (B, layers, H) for ``gru``, (B, 2 * layers, H) for
  ``lstm`` (all h layers, then all c layers), (B, window_length - 1, F) for ``window``
  (the previous encoded features). ``mlp``, ``gru_cell`` and ``window`` with
  window_length 1 keep no state and have neither ``state`` nor ``state_out``.

  The ONNX graph knows nothing of episodes. The caller starts every env with a zero
  state, feeds ``state_out`` back as the next step's ``state``, and, when an env's
  episode ends, zeroes that env's rows of the state before the next step::

      state = np.zeros((n_envs, *state_shape), np.float32)
      while True:
          logits, value, state = session.run(None, {"obs": obs, "state": state})
          ...                                    # pick actions, step the envs
          state[done] = 0.0                      # new episodes start from zero

  This is the same rule the trainer follows (zero the state where an episode starts),
  so the ONNX policy acts exactly as the trained one did.

`load_policy(path)` rebuilds the torch policy from the safetensors + JSON pair (never
``torch.load`` or pickle) and returns a `LoadedPolicy` that keeps the hidden state for
the caller: ``reset()``, then ``act(obs)`` once per env step.
"""

from __future__ import annotations

import copy
import json
import math
import os
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from rlcore.distributions import discrete_spec
from rlcore.models import ActorCritic, build_policy

__all__ = [
    "CONFIG_FILE",
    "FORMAT_VERSION",
    "ONNX_FILE",
    "ONNX_OPSET",
    "WEIGHTS_FILE",
    "LoadedPolicy",
    "export_policy",
    "load_policy",
]

FORMAT_VERSION = 1
WEIGHTS_FILE = "policy.safetensors"
CONFIG_FILE = "policy.json"
ONNX_FILE = "policy.onnx"
# Opset 17 is run by every onnxruntime since 1.12 and by most other ONNX runtimes, and
# holds every operator these policies need (GRU, LSTM, Gather, Concat...).
ONNX_OPSET = 17

# The TorchScript exporter's symbolic registry is process-global; exports are serialised
# so the temporary lowerings below are never seen half-registered by another thread.
_EXPORT_LOCK = threading.Lock()


# --------------------------------------------------------------------------- export


class _OnnxStep(nn.Module):
    """One acting step of a policy: (obs[, state]) -> (logits | mean, log_std, value[, state_out]).

    Calls the policy's own forward with T=1 and no episode start, so the exported graph
    is the code the trainer ran, not a re-implementation of it.
    """

    def __init__(self, policy: ActorCritic) -> None:
        super().__init__()
        self.policy = policy
        self.recurrent = policy.is_recurrent
        self.gaussian = policy.action_spec["kind"] == "gaussian"

    def forward(self, obs: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        batch = obs.shape[0]
        if state is None:
            # Stateless cores still take a (B, 0)-sized state argument.
            state = torch.zeros((batch, *self.policy.state_shape), device=obs.device)
        starts = torch.zeros((1, batch), dtype=torch.bool, device=obs.device)
        params, value, new_state = self.policy(obs.unsqueeze(0), state, starts)
        heads: tuple[torch.Tensor, ...] = (params[0],)
        if self.gaussian:
            heads = tuple(params[0].chunk(2, dim=-1))  # mean, log_std
        if self.recurrent:
            return *heads, value[0], new_state
        return *heads, value[0]


@contextmanager
def _quiet_legacy_exporter() -> Iterator[None]:
    """Hide the exporter's known, harmless warnings."""
    with _EXPORT_LOCK, warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of the dynamo one; see
        # `_export_onnx` for why it is still the right tool here. It also warns about
        # its own internal use of deprecated helpers.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
        warnings.filterwarnings("ignore", message=r".*legacy TorchScript-based ONNX export")
        # The core's `if T == 1 or not starts[1:].any()` branch is traced once; the
        # exported step always has T == 1, so the traced branch is the right one.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        # "Exporting ... with a batch_size other than 1 ... GRU/LSTM": the advice it gives
        # (pass h0/c0 as graph inputs) is what `state` is.
        warnings.filterwarnings("ignore", message=r"Exporting a model to ONNX with a batch_size")
        yield


def obs_dtype(config: dict[str, Any]) -> np.dtype:
    """The dtype a policy's observations come in: uint8 frames for `cnn`, else float32."""
    return np.dtype(np.uint8 if config.get("encoder") == "cnn" else np.float32)


def _onnx_io(policy: ActorCritic, config: dict[str, Any]) -> dict[str, Any]:
    """Names, shapes and dtypes of the ONNX graph's inputs and outputs ("batch" is dynamic)."""
    obs = ["batch", *config["obs_shape"]]
    state = ["batch", *policy.state_shape]
    inputs: dict[str, list[Any]] = {"obs": obs}
    head = ["batch", config["num_actions"]]
    outputs: dict[str, list[Any]] = (
        {"mean": head, "log_std": head} if policy.action_spec["kind"] == "gaussian" else {"logits": head}
    )
    outputs["value"] = ["batch"]
    if policy.is_recurrent:
        inputs["state"] = state
        outputs["state_out"] = state
    dtypes = {name: "float32" for name in [*inputs, *outputs]} | {"obs": obs_dtype(config).name}
    return {
        "opset": ONNX_OPSET,
        "inputs": inputs,
        "outputs": outputs,
        "dtypes": dtypes,
        "action": config.get("action", discrete_spec(config["num_actions"])),
    }


def _export_onnx(policy: ActorCritic, config: dict[str, Any], path: Path) -> None:
    """Write one policy step to ONNX with the TorchScript exporter (``dynamo=False``).

    Why not the dynamo exporter, torch's default since 2.9: on these small policies it
    takes 1-2 s per model and prints progress lines and FutureWarnings, where the
    TorchScript exporter takes ~0.05 s, is silent once its known warnings are filtered,
    and emits the native ONNX GRU/LSTM operators. The exported step has T == 1, where the
    `window` core takes a path with plain concatenation (no cummax/unfold). The
    TorchScript exporter is deprecated but present in the pinned torch 2.13; revisit
    when torch is upgraded.
    """
    # Export a float32 CPU copy in eval mode: the caller's module (maybe on a GPU, in
    # train mode) is left as it was.
    step = _OnnxStep(copy.deepcopy(policy).to(device="cpu", dtype=torch.float32).eval())
    # Trace with a batch of 2, not 1: a size-1 dimension can be specialised by the
    # tracer (broadcasting), and the batch must stay dynamic.
    example_batch = 2
    obs = torch.from_numpy(np.zeros((example_batch, *config["obs_shape"]), obs_dtype(config)))
    io = _onnx_io(policy, config)
    args: tuple[torch.Tensor, ...] = (obs,)
    if step.recurrent:
        args = (obs, step.policy.initial_state(example_batch))
    dynamic_axes = {name: {0: "batch"} for name in [*io["inputs"], *io["outputs"]]}
    with _quiet_legacy_exporter(), torch.no_grad():
        torch.onnx.export(
            step,
            args,
            str(path),
            input_names=list(io["inputs"]),
            output_names=list(io["outputs"]),
            dynamic_axes=dynamic_axes,
            opset_version=ONNX_OPSET,
            dynamo=False,
            do_constant_folding=True,
        )
    # Fail here, at the end of the job that has the weights in hand, rather than in the
    # user's runtime later.
    onnx.checker.check_model(str(path))


def _jsonable(value: Any) -> Any:
    """Plain-JSON form of metadata: numpy scalars/arrays to Python, NaN/inf to None.

    Metadata comes from the trainer (numpy means, tuples, paths); strict JSON has no NaN,
    and a mean return of NaN (no finished episode yet) must not fail the export.
    """
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, torch.Tensor):
        return _jsonable(value.detach().cpu().tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


@contextmanager
def _atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside `path`, renamed onto it only if the block succeeds.

    A job killed mid-export then leaves the previous files or none, never a truncated
    one that `load_policy` would choke on later.
    """
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _check_config_matches(policy: ActorCritic, config: dict[str, Any]) -> None:
    """Refuse to write an export that `load_policy` could not rebuild.

    A config that does not describe the policy (a wrong hidden size, another variant)
    would otherwise only surface when a user downloads the files.
    """
    try:
        rebuilt = build_policy(config)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise ValueError(f"config does not describe a buildable policy: {error!r}") from None
    expected = {name: tuple(t.shape) for name, t in rebuilt.state_dict().items()}
    actual = {name: tuple(t.shape) for name, t in policy.state_dict().items()}
    if expected != actual:
        differing = sorted(set(expected.items()) ^ set(actual.items()))[:4]
        raise ValueError(f"config does not match the policy's parameters, e.g. {differing}")


def export_policy(
    policy: ActorCritic,
    config: dict[str, Any],
    out_dir: Path | str,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Write policy.safetensors, policy.json and policy.onnx into `out_dir`.

    `config` is the `rlcore.models.policy_config` dict the policy was built from;
    `metadata` (env id, algorithm, spec, step, mean return...) is stored as given, made
    plain JSON. See the module docstring for the files' contents and the ONNX contract.
    """
    out_dir = Path(out_dir)
    _check_config_matches(policy, config)
    out_dir.mkdir(parents=True, exist_ok=True)

    # Safetensors refuses tensors that share storage or are not contiguous; clone so the
    # file holds exactly the state_dict's values, on the CPU.
    weights = {
        name: tensor.detach().to("cpu").contiguous().clone() for name, tensor in policy.state_dict().items()
    }
    with _atomic_path(out_dir / WEIGHTS_FILE) as tmp:
        save_file(weights, str(tmp), metadata={"format": "pt"})

    with _atomic_path(out_dir / ONNX_FILE) as tmp:
        _export_onnx(policy, config, tmp)

    document = {
        "format_version": FORMAT_VERSION,
        "config": _jsonable(config),
        "metadata": _jsonable(metadata or {}),
        "onnx": {"file": ONNX_FILE, **_onnx_io(policy, config)},
        "weights": WEIGHTS_FILE,
    }
    # Written last: a directory with policy.json in it is a complete export.
    with _atomic_path(out_dir / CONFIG_FILE) as tmp:
        tmp.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n")


# ----------------------------------------------------------------------------- load


class LoadedPolicy:
    """A saved policy that keeps its memory between calls, for evaluation and serving.

    Call `reset()` at the start, then `act(obs)` once per env step. Observations are
    either one env's, shape ``obs_shape`` (returns a Python int), or a batch of envs,
    shape ``(batch, *obs_shape)`` (returns an int64 array of shape (batch,)). For a
    vectorised env, pass ``episode_starts`` (or call `reset_rows`) with the envs whose
    episode just started, so only their memory is zeroed. A pixel policy takes the raw
    uint8 frames (C, H, W) as the trainer saw them.

    MultiDiscrete policies act with int64 arrays (k,) per env, Box ones with float32
    arrays (d,) per env, already clipped or squashed into the bounds (see the module
    docstring); `action_dist_params` gives the distribution itself for every kind.
    """

    def __init__(
        self,
        policy: ActorCritic,
        config: dict[str, Any],
        metadata: dict[str, Any],
        device: torch.device | str = "cpu",
        seed: int | None = None,
    ) -> None:
        self.policy = policy.to(device).eval()
        self.config = config
        self.metadata = metadata
        self.device = torch.device(device)
        self.rng = np.random.default_rng(seed)
        self._obs_shape = tuple(config["obs_shape"])
        self._obs_dtype = obs_dtype(config)
        self.action_spec: dict[str, Any] = policy.action_spec
        # None until the first step: the batch size is then taken from the observations.
        self._state: torch.Tensor | None = None

    @property
    def is_recurrent(self) -> bool:
        """Whether the policy remembers anything between steps."""
        return self.policy.is_recurrent

    @property
    def state(self) -> np.ndarray | None:
        """A copy of the current memory, (batch, *state_shape), or None before a step."""
        return None if self._state is None else self._state.cpu().numpy().copy()

    def reset(self, batch_size: int | None = None, seed: int | None = None) -> None:
        """Start new episodes in every env: the memory becomes zero.

        With `batch_size` None the next call's observations set the batch size. A `seed`
        re-seeds the action sampler, for a reproducible evaluation.
        """
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self._state = None if batch_size is None else self.policy.initial_state(batch_size, self.device)

    def reset_rows(self, mask: np.ndarray | list[bool] | bool) -> None:
        """Zero the memory of the envs where `mask` is True (their episode just started)."""
        if self._state is None:
            return  # nothing remembered yet: every env starts from zero anyway
        rows = torch.as_tensor(np.asarray(mask, dtype=bool).reshape(-1), device=self.device)
        if rows.shape[0] != self._state.shape[0]:
            raise ValueError(
                f"mask has {rows.shape[0]} entries but the policy holds {self._state.shape[0]} envs"
            )
        self._state = self._state.masked_fill(rows.view(-1, *([1] * (self._state.dim() - 1))), 0.0)

    def _step(
        self, obs: np.ndarray, episode_starts: np.ndarray | list[bool] | bool | None
    ) -> tuple[torch.Tensor, bool]:
        """Advance the memory one step; returns (params (B, P), whether obs was batched)."""
        obs_array = np.asarray(obs, dtype=self._obs_dtype)
        if obs_array.shape == self._obs_shape:
            batched = False
            obs_array = obs_array[None]
        elif obs_array.shape[1:] == self._obs_shape:
            batched = True
        else:
            raise ValueError(
                f"observation shape {obs_array.shape} is neither {self._obs_shape} "
                f"nor (batch, *{self._obs_shape})"
            )
        batch = obs_array.shape[0]
        if self._state is None:
            self._state = self.policy.initial_state(batch, self.device)
        elif self._state.shape[0] != batch:
            raise ValueError(
                f"the policy's memory holds {self._state.shape[0]} envs but {batch} "
                f"observations were given; call reset({batch}) to start over"
            )
        if episode_starts is not None:
            self.reset_rows(episode_starts)
        obs_tensor = torch.from_numpy(obs_array).to(self.device).unsqueeze(0)
        # Starts were applied to the memory above; the network sees none.
        starts = torch.zeros((1, batch), dtype=torch.bool, device=self.device)
        with torch.inference_mode():
            logits, _, self._state = self.policy(obs_tensor, self._state, starts)
        return logits[0], batched

    def action_probs(
        self,
        obs: np.ndarray,
        episode_starts: np.ndarray | list[bool] | bool | None = None,
    ) -> np.ndarray:
        """Action probabilities, (num_actions,) or (batch, num_actions); for MultiDiscrete
        every dimension's probabilities concatenated (each slice sums to 1).

        Like `act`, this is a step: it advances the memory. Do not call both for the
        same observation; pick an action from these probabilities instead. Gaussian
        policies have no probabilities: use `action_dist_params`.
        """
        if self.action_spec["kind"] == "gaussian":
            raise ValueError("a Box-action policy has no action probabilities; use action_dist_params")
        params, batched = self._step(obs, episode_starts)
        probs = np.concatenate([p.cpu().numpy() for p in self._probs(params)], axis=-1)
        return probs if batched else probs[0]

    def action_dist_params(
        self,
        obs: np.ndarray,
        episode_starts: np.ndarray | list[bool] | bool | None = None,
    ) -> dict[str, np.ndarray]:
        """The action distribution's parameters, as the ONNX graph outputs them (a step too).

        ``{"logits"}`` for discrete and multi_discrete actions (concatenated per dimension),
        ``{"mean", "log_std"}`` for gaussian ones; each (P,) or (batch, P).
        """
        params, batched = self._step(obs, episode_starts)
        array = params.float().cpu().numpy()
        if self.action_spec["kind"] == "gaussian":
            mean, log_std = np.split(array, 2, axis=-1)
            out = {"mean": mean, "log_std": log_std}
        else:
            out = {"logits": array}
        return out if batched else {name: value[0] for name, value in out.items()}

    def _probs(self, params: torch.Tensor) -> list[torch.Tensor]:
        """Float64 probabilities of each categorical dimension (one for Discrete)."""
        sizes = self.action_spec.get("nvec", [params.shape[-1]])
        return [torch.softmax(p.double(), dim=-1) for p in params.split(sizes, dim=-1)]

    def _sample_categorical(self, probs: torch.Tensor) -> np.ndarray:
        # Inverse-CDF sampling, one uniform number per env, vectorised over the batch.
        cdf = np.cumsum(probs.cpu().numpy(), axis=-1)
        draws = self.rng.random((cdf.shape[0], 1)) * cdf[:, -1:]
        return np.minimum((cdf <= draws).sum(axis=-1), cdf.shape[-1] - 1)

    def act(
        self,
        obs: np.ndarray,
        deterministic: bool = False,
        episode_starts: np.ndarray | list[bool] | bool | None = None,
    ) -> int | np.ndarray:
        """Pick actions for `obs` and advance the memory one step.

        `deterministic` takes the most likely action (per dimension for MultiDiscrete; the
        mean, clipped or squashed, for Box); otherwise actions are sampled with this
        policy's numpy Generator (seed it in `load_policy` or `reset`). `episode_starts`
        (bool per env) zeroes the memory of those envs first.
        """
        params, batched = self._step(obs, episode_starts)
        dist = self.policy.dist
        if self.action_spec["kind"] == "gaussian":
            raw = dist.deterministic(params)
            if not deterministic:
                _, log_std = params.chunk(2, dim=-1)
                noise = torch.from_numpy(self.rng.standard_normal(raw.shape)).to(raw)
                raw = raw + log_std.exp() * noise
            sent = dist.to_env(raw).float().cpu().numpy()
            return sent if batched else sent[0]
        if deterministic:
            actions = dist.deterministic(params).cpu().numpy()
        else:
            parts = [self._sample_categorical(p) for p in self._probs(params)]
            actions = parts[0] if self.action_spec["kind"] == "discrete" else np.stack(parts, axis=-1)
        actions = actions.astype(np.int64)
        if batched:
            return actions
        return int(actions[0]) if actions.ndim == 1 else actions[0]


def _resolve(path: Path) -> Path:
    """The export directory for a directory or the path of one of its files."""
    if path.is_dir():
        return path
    if path.name in (WEIGHTS_FILE, CONFIG_FILE, ONNX_FILE):
        return path.parent
    raise ValueError(
        f"{path} is not a policy export: expected a directory holding {WEIGHTS_FILE} and "
        f"{CONFIG_FILE}, or the path of one of them"
    )


def load_policy(path: str | Path, device: str = "cpu", seed: int | None = None) -> LoadedPolicy:
    """Load an export made by `export_policy` with safetensors and JSON only.

    `path` is the export directory or the path of its policy.safetensors / policy.json.
    `seed` seeds the action sampler. Raises ValueError, naming the file, when the export
    is missing, corrupted, of a newer format or of an unknown model variant.
    """
    directory = _resolve(Path(path))
    config_path = directory / CONFIG_FILE
    weights_path = directory / WEIGHTS_FILE
    for required in (config_path, weights_path):
        if not required.is_file():
            raise ValueError(f"{required} not found: not a complete policy export")

    # Errors are re-raised as ValueError `from None`: the message says what is wrong
    # with which file, and the traceback from inside json/torch adds nothing for a user.
    try:
        document = json.loads(config_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{config_path} is not valid JSON: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("config"), dict):
        raise ValueError(f"{config_path} has no 'config' object")
    version = document.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{config_path} has format_version {version!r}; this rlcore reads up to {FORMAT_VERSION}"
        )
    config = document["config"]
    metadata = document.get("metadata") or {}

    try:
        policy = build_policy(config)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise ValueError(f"{config_path} describes no buildable policy: {error!r}") from None

    try:
        weights = load_file(str(weights_path), device="cpu")
    except Exception as error:  # safetensors raises its own SafetensorError, among others
        raise ValueError(f"{weights_path} is not a readable safetensors file: {error}") from None
    try:
        policy.load_state_dict(weights, strict=True)
    except RuntimeError as error:
        raise ValueError(
            f"{weights_path} does not match the architecture in {config_path}: {error}"
        ) from None
    return LoadedPolicy(policy, config, metadata, device=device, seed=seed)
