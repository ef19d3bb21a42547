"""How much memory a TrainSpec's training run needs, estimated before it runs.

A spec that asks for more memory than the machine has is killed by the kernel, and an
OOM kill looks like a lost worker: the service re-queues the job and it kills the next
worker too. `TrainSpec` therefore refuses a spec whose estimate exceeds `memory_limit()`
(`RLSERVE_MAX_JOB_MEMORY`, default 4 GiB) with a message naming the fields that make it
large.

The estimate counts what grows with the spec, not the fixed cost of Python, torch and
the envs (a few hundred MB): the collected rollout (exactly, at its real dtypes; for
REINFORCE the whole episodes it waits for, bounded by the env's time limit), the
update's copies of it (advantages, chunked sequences, minibatches), what one
minibatch's forward pass keeps for the backward, and the model's parameters with their
gradients, Adam's two moments and the best weights the trainer keeps. The activation
figures per step follow the code (`rlcore/models/recurrence.py` on the CPU, the window
unroll in `WindowCore`, the Nature-CNN's feature maps for pixel observations), rounded
up; tests/rlcore/test_memory.py checks the whole estimate against the measured peak of
real updates.

Observations are counted at the dtype the rollout stores them in: uint8 pixel frames at
1 byte a value, everything else as float32 (`RolloutCollector`). The observation shape,
dtype and number of actions come from the env registry (`env_space_info`), so that
validating a spec never builds an env (nor loads the Atari emulator).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rlcore.envs import EnvOptions
    from rlcore.spec import TrainSpec

LIMIT_ENV = "RLSERVE_MAX_JOB_MEMORY"
DEFAULT_LIMIT = 4 * 2**30

FLOAT = 4  # float32: vector observations, Box actions, log-probs, values, rewards, states, activations
LONG = 8  # int64 actions (Discrete, MultiDiscrete)
BOOL = 1  # done and episode-start flags

_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_UNITS |= {"kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_UNITS |= {"kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_size(text: str) -> int:
    """Bytes from `4294967296`, `4GiB`, `512 MiB` or `8GB` (GB = 10^9, GiB = 2^30)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = match and _UNITS.get(match.group(2).lower())
    if not match or unit is None or float(match.group(1)) * unit < 1:
        raise ValueError(f"not a memory size: {text!r} (examples: 4294967296, 4GiB, 512MiB, 8GB)")
    return int(float(match.group(1)) * unit)


def memory_limit() -> int:
    """The most memory a spec may need: `RLSERVE_MAX_JOB_MEMORY`, read now, or 4 GiB."""
    value = os.environ.get(LIMIT_ENV, "").strip()
    if not value:
        return DEFAULT_LIMIT
    try:
        return parse_size(value)
    except ValueError as error:
        raise ValueError(f"{LIMIT_ENV}: {error}") from None


def format_size(size: float) -> str:
    """`131 GiB`, `4 GiB`, `1.5 MiB`: binary units, three significant digits at most."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.3g} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class EnvSpaces:
    """What the estimate needs of an env: its observations' shape and dtype, its actions.

    `num_actions` is the policy head's width: the number of Discrete actions, sum(nvec)
    for MultiDiscrete, d for a Box of d dimensions (as `EnvInfo.num_actions`).
    """

    obs_shape: tuple[int, ...]
    obs_dtype: str  # a numpy dtype name: "float32", "uint8"...
    num_actions: int
    action_kind: str = "discrete"  # "discrete", "multi_discrete" or "gaussian"
    action_nvec: tuple[int, ...] = ()
    action_low: tuple[float, ...] = ()
    action_high: tuple[float, ...] = ()

    @property
    def action_dims(self) -> int:
        """Values in one stored action: 1, k for MultiDiscrete(k dims), d for Box(d)."""
        if self.action_kind == "multi_discrete":
            return len(self.action_nvec)
        return len(self.action_low) if self.action_kind == "gaussian" else 1

    @property
    def action_bytes(self) -> int:
        """Bytes of one stored action: int64 indices, or float32 Box samples."""
        return self.action_dims * (FLOAT if self.action_kind == "gaussian" else LONG)

    @property
    def action_spec(self) -> int | dict[str, object]:
        """What `rlcore.models.policy_config` takes as `actions` here (Box: the default squash)."""
        if self.action_kind == "multi_discrete":
            return {"kind": "multi_discrete", "nvec": list(self.action_nvec)}
        if self.action_kind == "gaussian":
            return {
                "kind": "gaussian",
                "low": list(self.action_low),
                "high": list(self.action_high),
                "squash": "clip",
            }
        return self.num_actions

    @property
    def obs_size(self) -> int:
        return math.prod(self.obs_shape)

    @property
    def obs_bytes(self) -> int:
        """Bytes of one stored observation: uint8 frames as they come, the rest as float32."""
        return self.obs_size * (1 if self.obs_dtype == "uint8" else FLOAT)


def env_space_info(env_id: str, options: EnvOptions | None = None) -> EnvSpaces:
    """The spaces of an allowed env built with `options`, from the registry alone (no env is built)."""
    # Imported here, not at the top: every `rlserve` command reads the memory limit from
    # this module with its settings, and the env registry (gymnasium, numpy) costs 0.3 s.
    from rlcore.envs import ENVS, observation_shape

    info = ENVS[env_id]
    dtype = "uint8" if info.pixels else "float32"
    return EnvSpaces(
        observation_shape(env_id, options),
        dtype,
        info.num_actions,
        info.action_kind,
        info.action_nvec,
        info.action_low,
        info.action_high,
    )


def env_spaces(env_id: str, options: EnvOptions | None = None) -> tuple[tuple[int, ...], int]:
    """(observation shape, policy head width) of an allowed env (see `EnvSpaces.num_actions`)."""
    spaces = env_space_info(env_id, options)
    return spaces.obs_shape, spaces.num_actions


@dataclass(frozen=True)
class Part:
    """One part of the estimate: its bytes and what makes it that large, in field names."""

    name: str
    bytes: int
    why: str
    lower: tuple[str, ...]  # fields that shrink it when lowered
    raise_: tuple[str, ...] = ()  # ... and when raised


@dataclass(frozen=True)
class MemoryEstimate:
    """A spec's memory by part; `total` is what the limit is checked against."""

    rollout: Part
    update_data: Part
    activations: Part
    model: Part

    @property
    def parts(self) -> tuple[Part, ...]:
        return (self.rollout, self.update_data, self.activations, self.model)

    @property
    def total(self) -> int:
        return sum(part.bytes for part in self.parts)

    def explain(self, limit: int) -> str:
        """Why the spec is too large: the parts that matter, largest first, and what to lower."""
        large = sorted(
            (p for p in self.parts if p.bytes >= 0.1 * self.total), key=lambda p: p.bytes, reverse=True
        )
        lower = list(dict.fromkeys(field for part in large for field in part.lower))
        raise_ = list(dict.fromkeys(field for part in large for field in part.raise_))
        return (
            f"this spec needs about {format_size(self.total)} of memory (limit {format_size(limit)}): "
            + "; ".join(f"{p.name} {format_size(p.bytes)} = {p.why}" for p in large)
            + f"; lower {_join(lower)}"
            + (f", or raise {_join(raise_)}" if raise_ else "")
        )


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


# --- the model ------------------------------------------------------------------------


# The Nature-CNN of `rlcore.models.encoders` (not imported: that loads torch wherever a
# spec is validated; test_memory.py checks these against the built encoder).
CNN_CONVS = ((32, 8, 4), (64, 4, 2), (64, 3, 1))  # (out channels, kernel, stride)
CNN_FEATURES = 512

Obs = int | tuple[int, ...]  # an observation's shape, or the size of a vector one


def _shape(obs: Obs) -> tuple[int, ...]:
    return (obs,) if isinstance(obs, int) else tuple(obs)


def encoder_kind(spec: TrainSpec, obs: Obs) -> str:
    """The encoder `spec_policy_config` picks: `cnn` for (C, H, W) frames, else the spec's."""
    return "cnn" if len(_shape(obs)) == 3 else spec.encoder


def cnn_feature_maps(obs_shape: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """(channels, height, width) after each of the Nature-CNN's convolutions."""
    _, height, width = obs_shape
    maps = []
    for channels, kernel, stride in CNN_CONVS:
        height, width = (height - kernel) // stride + 1, (width - kernel) // stride + 1
        maps.append((channels, height, width))
    return maps


def _cnn_parameters(obs_shape: tuple[int, ...]) -> int:
    channels, count = obs_shape[0], 0
    for out_channels, kernel, _ in CNN_CONVS:
        count += out_channels * (channels * kernel * kernel + 1)
        channels = out_channels
    return count + (math.prod(cnn_feature_maps(obs_shape)[-1]) + 1) * CNN_FEATURES


def _cnn_floats(obs_shape: tuple[int, ...]) -> int:
    """Floats per replayed step that the Nature-CNN keeps for, and makes in, the backward.

    The float copy of the frames, its scaled copy and its channels-last copy (the first
    convolution's saved input), then per feature-map value its convolution's output, the
    ReLU's saved output and a gradient: 3 floats, as measured on the CPU with the NHWC
    layout, which unfolds no inputs (tests/rlcore/test_memory.py); then the 512 features
    with theirs.
    """
    maps = sum(math.prod(m) for m in cnn_feature_maps(obs_shape))
    return 3 * math.prod(obs_shape) + 3 * maps + 4 * CNN_FEATURES


def _features(spec: TrainSpec, obs: Obs) -> int:
    """Width of what the memory core reads: the encoder's output or the observation."""
    kind = encoder_kind(spec, obs)
    if kind == "cnn":
        return CNN_FEATURES
    return spec.hidden_size if kind == "dense" else math.prod(_shape(obs))


def state_size(spec: TrainSpec, obs: Obs) -> int:
    """Floats in one env's memory state (`MemoryCore.state_shape`)."""
    hidden, layers = spec.hidden_size, spec.num_layers
    return {
        "gru": layers * hidden,
        "lstm": 2 * layers * hidden,
        "window": (spec.window_length - 1) * _features(spec, obs),
    }.get(spec.model.value, 0)


def parameter_count(spec: TrainSpec, obs: Obs, num_actions: int, action_kind: str = "discrete") -> int:
    """Parameters of the policy `build_policy` makes for this spec, on observations `obs`
    (a shape, or the size of a vector), with a policy head of `num_actions` outputs (plus
    a log-std per dimension for Gaussian actions)."""
    hidden, features = spec.hidden_size, _features(spec, obs)

    def rnn(gates: int, inputs: int, layers: int) -> int:
        first = gates * hidden * (inputs + hidden + 2)
        return first + (layers - 1) * gates * hidden * (2 * hidden + 2)

    encoder = {
        "cnn": lambda: _cnn_parameters(_shape(obs)),
        "dense": lambda: (math.prod(_shape(obs)) + 1) * hidden,
        "none": lambda: 0,
    }[encoder_kind(spec, obs)]()
    core = {
        "mlp": (features + 1) * hidden,
        "gru_cell": rnn(3, features, 1),
        "gru": rnn(3, features, spec.num_layers),
        "lstm": rnn(4, features, spec.num_layers),
        "window": rnn(3, features, 1),
    }[spec.model.value]
    heads = (hidden + 1) * (num_actions + 1)
    log_std = num_actions if action_kind == "gaussian" else 0
    return encoder + core + heads + log_std


# --- the estimate ---------------------------------------------------------------------

# Bytes per step of every (T, N) tensor besides the observation.
_ROLLOUT_STEP = 4 * FLOAT + LONG + 2 * BOOL  # log-prob, value, reward, truncation value; action; flags
_SEQUENCE_STEP = 6 * FLOAT + LONG + BOOL  # log-prob, value, advantage, return, mask (+1 slack); action; start
_EPISODE_STEP = 2 * FLOAT + LONG  # what an episode keeps besides the observation: log-prob, reward; action
_PACKED_STEP = 6 * FLOAT + LONG + 3 * BOOL  # pack_episodes: log-prob, value, reward, return, mask, fresh
# What the loss (log-softmax, entropy, ratio, clip, masks) keeps per step, besides the logits.
_LOSS_FLOATS = 48
# rlcore.episodes.BLOCK, the steps an episode collector plays between looks; not imported,
# since that would load torch wherever a spec is validated (test_memory.py checks it).
EPISODE_BLOCK = 32
_BATCH_FIELDS = ("num_envs", "rollout_length")


def _core_floats(spec: TrainSpec, features: int) -> int:
    """Floats per replayed step that the memory core keeps for, and makes in, the backward.

    From the tensors the code saves (e.g. per GRU layer r, z, gh_n, n, h_in and the output;
    per LSTM layer i, f, g, o, h_in, c_in, tanh(c) and the output) and the backward's
    temporaries, rounded up to the peak process memory measured on the CPU
    (tests/rlcore/test_memory.py), which is higher than the live tensors because the
    allocator keeps freed blocks.
    """
    hidden, layers = spec.hidden_size, spec.num_layers
    if spec.model.value == "mlp":
        return 2 * hidden
    if spec.model.value == "gru_cell":
        return 25 * hidden
    if spec.model.value == "gru":
        return 13 * hidden * layers + 17 * hidden + features
    if spec.model.value == "lstm":
        return 15 * hidden * layers + 18 * hidden + features
    # window: every step unrolls a GRU over its own k-step window, from a masked copy of it.
    return spec.window_length * (2 * features + 22 * hidden)


def estimate(spec: TrainSpec) -> MemoryEstimate:
    """The memory a run of `spec` needs beyond the fixed cost of Python, torch and the envs."""
    return estimate_for(spec, env_space_info(spec.env_id, spec.env_options()))


def estimate_for(spec: TrainSpec, spaces: EnvSpaces) -> MemoryEstimate:
    """`estimate` of `spec` on envs of these spaces."""
    obs_shape, num_actions = spaces.obs_shape, spaces.num_actions
    hidden = spec.hidden_size
    width, width_fields = _width(spec)
    if spec.algo.value == "reinforce":
        held, copies, batch, batch_why = _episode_parts(spec, spaces)
    else:
        held, copies, batch, batch_why = _rollout_parts(spec, spaces)
    batch_steps = -(-batch // spec.minibatches)

    # The dense encoder keeps its ReLU output and gets a gradient; the heads send two
    # gradients into the core's output.
    encoder_floats = {
        "cnn": lambda: _cnn_floats(obs_shape),
        "dense": lambda: 2 * hidden,
        "none": lambda: 0,
    }[encoder_kind(spec, obs_shape)]()
    core_floats = _core_floats(spec, _features(spec, obs_shape))
    head = 2 * num_actions if spaces.action_kind == "gaussian" else num_actions  # + the log-std
    floats = encoder_floats + core_floats + 2 * hidden + 4 * head + _LOSS_FLOATS
    activations = Part(
        "activations",
        batch_steps * floats * FLOAT,
        f"{batch_steps:,} steps per minibatch ({batch_why} / {spec.minibatches} minibatches) "
        f"x {floats:,} floats ({width})",
        _BATCH_FIELDS + width_fields,
        ("minibatches",),
    )

    params = parameter_count(spec, obs_shape, num_actions, spaces.action_kind)
    layered = spec.model.value in ("gru", "lstm")
    model = Part(
        "model",
        5 * params * FLOAT,
        f"{params:,} parameters (hidden_size {hidden}"
        + (f", num_layers {spec.num_layers}" if layered else "")
        + ") x 5: weights, gradients, Adam's 2 moments, best weights",
        ("hidden_size", "num_layers") if layered else ("hidden_size",),
    )
    return MemoryEstimate(held, copies, activations, model)


def _extra_action_bytes(spaces: EnvSpaces) -> int:
    """Bytes a stored action takes beyond the one int64 the per-step constants count."""
    return spaces.action_bytes - LONG


def _rollout_parts(spec: TrainSpec, spaces: EnvSpaces) -> tuple[Part, Part, int, str]:
    """A2C and PPO: the rollout, its copies in the update, and the steps replayed."""
    envs, steps, chunk = spec.num_envs, spec.rollout_length, spec.chunk_length
    state = state_size(spec, spaces.obs_shape)
    chunks = envs * spec.chunks_per_env
    state_fields = _width(spec)[1] if state else ()
    # Shorter chunks mean more chunk-start states, in the rollout and in its copies.
    many_states = ("bptt_length",) if state and chunks > envs else ()

    # Exactly what RolloutCollector.collect(rollout_length, chunk_length) allocates.
    per_step = spaces.obs_bytes + _ROLLOUT_STEP + _extra_action_bytes(spaces)
    why = f"{envs} num_envs x {steps} rollout_length steps x {per_step} B"
    if state:
        rows = _state_why(spec, spaces.obs_shape)
        why += f", + {chunks:,} chunk-start states x {format_size(state * FLOAT)} ({rows})"
    rollout = Part(
        "rollout",
        envs * steps * per_step + chunks * state * FLOAT + envs * FLOAT,  # + the last values
        why,
        _BATCH_FIELDS + state_fields,
        many_states,
    )

    # The update holds the rollout's chunked copy and a second one cut into minibatches
    # (and the next collect still holds the last ones): twice the padded steps.
    padded = chunks * chunk
    why = f"2 x {padded:,} chunked steps of {envs} num_envs x {steps} rollout_length"
    if state:
        why += f", + 2 x {chunks:,} chunk-start states (bptt_length {chunk})"
    copies = Part(
        "update copies",
        2
        * (
            padded * (spaces.obs_bytes + _SEQUENCE_STEP + _extra_action_bytes(spaces))
            + chunks * state * FLOAT
        )
        + 2 * envs * steps * FLOAT,  # + advantages and returns
        why,
        _BATCH_FIELDS + state_fields,
        many_states,
    )
    return rollout, copies, padded, f"{envs} num_envs x {steps} rollout_length"


def _episode_parts(spec: TrainSpec, spaces: EnvSpaces) -> tuple[Part, Part, int, str]:
    """REINFORCE (`rlcore.episodes`): the episodes held, their packed copies in the update,
    and the steps replayed.

    An update waits for whole episodes: the last block of steps before it can end an
    episode of every env, each up to the env's time limit, so a batch holds up to
    num_envs x (rollout_length + longest episode + a block) steps; that bound is reached
    when every env ends a full-length episode at the same step, as a good policy's do.
    The episodes still running are held too, as views of the blocks they were played in.
    """
    from rlcore.envs import ENVS

    envs, steps, block = spec.num_envs, spec.rollout_length, EPISODE_BLOCK
    longest = ENVS[spec.env_id].max_episode_steps or steps
    batch = envs * (steps + longest + block)
    running = envs * (longest + 2 * block)
    extra = _extra_action_bytes(spaces)
    per_step = spaces.obs_bytes + _EPISODE_STEP + extra
    held = Part(
        "episodes",
        (batch + running) * per_step + envs * block * (spaces.obs_bytes + _ROLLOUT_STEP + extra),
        f"up to {batch + running:,} steps of {envs} num_envs x ({steps} rollout_length + 2 x "
        f"{longest}-step episodes of {spec.env_id}) x {per_step} B",
        _BATCH_FIELDS,
    )
    # pack_episodes lays the episodes out in columns (from a concatenated copy), and the
    # minibatches copy them again. The columns' zero initial states are left out: a column
    # holds at least one whole episode, so they are small next to the activations.
    copies = Part(
        "update copies",
        batch * (2 * (spaces.obs_bytes + _PACKED_STEP + extra) + per_step),
        f"3 x {batch:,} packed steps",
        _BATCH_FIELDS,
    )
    batch_why = f"up to {envs} num_envs x ({steps} rollout_length + {longest} longest episode + {block})"
    return held, copies, batch, batch_why


def _width(spec: TrainSpec) -> tuple[str, tuple[str, ...]]:
    """What sets the model's per-step size, in words and as field names."""
    if spec.model.value == "window":
        return (
            f"window_length {spec.window_length} x hidden_size {spec.hidden_size} unrolled per step",
            ("window_length", "hidden_size"),
        )
    if spec.model.value in ("gru", "lstm"):
        return f"hidden_size {spec.hidden_size} x num_layers {spec.num_layers}", ("hidden_size", "num_layers")
    return f"hidden_size {spec.hidden_size}", ("hidden_size",)


def _state_why(spec: TrainSpec, obs_shape: tuple[int, ...]) -> str:
    if spec.model.value == "window":
        features = {
            "cnn": f"{CNN_FEATURES} cnn features",
            "dense": f"hidden_size {spec.hidden_size}",
            "none": "observation",
        }[encoder_kind(spec, obs_shape)]
        return f"window_length {spec.window_length} - 1 x {features}"
    rows = (
        f"2 x num_layers {spec.num_layers}" if spec.model.value == "lstm" else f"num_layers {spec.num_layers}"
    )
    return f"{rows} x hidden_size {spec.hidden_size}"
