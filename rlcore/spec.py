"""TrainSpec: the one definition of a training job, shared by the CLI, the API and the worker."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

from rlcore.envs import ENVS, EnvOptions
from rlcore.memory import estimate, memory_limit


class Algorithm(StrEnum):
    reinforce = "reinforce"
    a2c = "a2c"
    ppo = "ppo"


class ModelKind(StrEnum):
    mlp = "mlp"
    gru_cell = "gru_cell"
    gru = "gru"
    lstm = "lstm"
    window = "window"


Device = Literal["auto", "cpu", "cuda"]
Encoder = Literal["dense", "none", "cnn"]

# Hyperparameters that depend on the algorithm. A field left out of a spec takes the
# value for its algorithm from this table; every key must be a TrainSpec field.
ALGORITHM_DEFAULTS: dict[Algorithm, dict[str, Any]] = {
    Algorithm.reinforce: {
        "learning_rate": 1e-2,
        "num_envs": 16,
        "rollout_length": 200,
        "ent_coef": 0.01,
        "epochs": 1,
        "minibatches": 1,
        "gae_lambda": 1.0,
        "anneal_lr": True,
        "max_grad_norm": 1.0,
        "normalize_advantages": True,
    },
    Algorithm.a2c: {
        "learning_rate": 3e-3,
        "num_envs": 16,
        "rollout_length": 16,
        "ent_coef": 0.01,
        "epochs": 1,
        "minibatches": 1,
        "gae_lambda": 0.95,
        "anneal_lr": False,
        "max_grad_norm": 0.5,
        "normalize_advantages": False,
    },
    # Recurrent PPO on 1-2 CPU threads: many envs with short rollouts keep each replayed
    # sequence short (the update runs the recurrence step by step), and many small
    # gradient steps per rollout make up for the short rollouts. gamma 0.98 and lambda
    # 0.8 (rl-zoo3's CartPoleNoVel values) keep the value targets small, which matters
    # because actor and critic share the memory core. Advantages are not normalised: once
    # the policy is near perfect they are mostly noise, and scaling that noise to unit
    # variance drives full-size updates in random directions until the policy collapses
    # (with it, 2 of seeds 0-4 ended CartPole-v1 at 362 and 449 after reaching 475).
    # Seeds 0-4 reach 475 on CartPole-v1 after 82k-127k steps (gru and lstm) and stay.
    Algorithm.ppo: {
        "learning_rate": 2e-3,
        "num_envs": 64,
        "rollout_length": 16,
        "ent_coef": 0.0,
        "epochs": 10,
        "minibatches": 4,
        "gamma": 0.98,
        "gae_lambda": 0.8,
        "anneal_lr": True,
        "max_grad_norm": 0.5,
        "normalize_advantages": False,
    },
}

# Hyperparameters of an environment family, over those of the algorithm. Atari follows
# CleanRL's ppo_atari_lstm: 8 envs x 128 steps in 4 minibatches of whole env columns,
# 4 epochs, lr 2.5e-4 annealed, clip 0.1, entropy 0.01, gamma 0.99, lambda 0.95, a
# 128-unit core, rewards clipped to their sign for training.
FAMILY_DEFAULTS: dict[tuple[str, Algorithm], dict[str, Any]] = {
    ("atari", Algorithm.ppo): {
        "learning_rate": 2.5e-4,
        "num_envs": 8,
        "rollout_length": 128,
        "minibatches": 4,
        "epochs": 4,
        "clip_range": 0.1,
        "ent_coef": 0.01,
        "gamma": 0.99,
        "gae_lambda": 0.95,
        "anneal_lr": True,
        "max_grad_norm": 0.5,
        "normalize_advantages": True,
        "hidden_size": 128,
    },
}
# Hyperparameters of one environment, over its family's (as rl-zoo3 keeps them per env).
# Pendulum's reward reaches -16 per step and its horizon is short: gamma 0.9 and lambda 0.95
# (rl-zoo3's values) and rewards scaled by the running std of the return. With them PPO gru
# on the masked Pendulum ended seeds 0-4 at -264 to -324 after 150k steps (mlp: -1120).
ENV_DEFAULTS: dict[tuple[str, Algorithm], dict[str, Any]] = {
    **{
        (env_id, Algorithm.ppo): {"gamma": 0.9, "gae_lambda": 0.95, "normalize_reward": True}
        for env_id in ("Pendulum-v1", "PendulumMasked-v1")
    },
    # Observations normalised by their running statistics, as rl-zoo3 does for CartPoleNoVel:
    # on seeds 0-4 the median steps to a last-100 mean of 475 (500k-step schedule) fell from
    # 313k to 164k (gru) and 196k (lstm). As a default for every vector env it slowed lstm on
    # CartPole-v1 (475 within 200k on 3 of 5 seeds), so it is this env's own.
    ("CartPoleMasked-v1", Algorithm.ppo): {"normalize_obs": True},
}
# Rewards are clipped to their sign for training in these families (the reported episode
# return stays the game score).
CLIPPED_REWARD_FAMILIES = frozenset({"atari"})

# The env options (`rlcore.envs.EnvOptions`) a spec may set, where its env accepts them.
ENV_OPTIONS = tuple(EnvOptions.__dataclass_fields__)

# Fields that an algorithm does not use, and why. A spec that sets one is refused with
# the reason, and a spec of that algorithm holds None there (and leaves it out of its
# dump), so that no value is shown or stored that the run never used.
NOT_APPLYING: dict[Algorithm, dict[str, str]] = {
    Algorithm.reinforce: {
        "vf_coef": "it trains no critic",
        "gae_lambda": "it uses Monte Carlo returns",
        "clip_range": "only ppo clips its update",
        "epochs": "it makes one pass over each batch of episodes",
        "target_kl": "it makes one pass over each batch of episodes",
    },
    Algorithm.a2c: {
        "clip_range": "only ppo clips its update",
        "epochs": "it makes one pass per rollout",
        "target_kl": "it makes one pass per rollout",
    },
    Algorithm.ppo: {},
}
_ALGORITHM_ONLY = sorted({name for fields in NOT_APPLYING.values() for name in fields})


def env_defaults(env_id: Any, algo: Algorithm) -> dict[str, Any]:
    """Defaults that depend on the env: its family's and its own hyperparameters, options and encoder."""
    env = ENVS.get(env_id) if isinstance(env_id, str) else None
    if env is None:
        return {}  # the field validator reports the unknown env
    options = {name: getattr(EnvOptions(), name) for name in env.options}
    return {
        **FAMILY_DEFAULTS.get((env.family, algo), {}),
        **ENV_DEFAULTS.get((env.id, algo), {}),
        **options,
        "encoder": "cnn" if env.pixels else "dense",
        "clip_rewards": env.family in CLIPPED_REWARD_FAMILIES,
    }


class TrainSpec(BaseModel):
    """A training job: algorithm, model variant, environment and hyperparameters.

    Fields left unset that depend on the algorithm are filled from ALGORITHM_DEFAULTS;
    fields the algorithm does not use (NOT_APPLYING) are None and may not be set.
    Rules across fields (in their descriptions too): bptt_length <= rollout_length,
    num_envs * rollout_length <= 1,000,000, minibatches <= num_envs * chunks per env, and
    the estimated memory within RLSERVE_MAX_JOB_MEMORY.
    """

    # NaN and Infinity (which JSON and YAML can spell) are refused with a clear message.
    model_config = ConfigDict(extra="forbid", use_enum_values=False, allow_inf_nan=False)

    algo: Algorithm = Field(Algorithm.ppo, description="Training algorithm.")
    model: ModelKind = Field(ModelKind.gru, description="Policy network variant.")
    env_id: str = Field(
        "CartPole-v1",
        description="Environment id from the allow-list.",
        # Read when the schema is made: envs from plugins join ENVS after this module loads.
        json_schema_extra=lambda schema: schema.update(enum=sorted(ENVS)),
    )
    seed: int = Field(0, ge=0, le=2**31 - 1)
    total_steps: int = Field(100_000, ge=1, le=100_000_000, description="Env steps to train.")
    num_envs: int = Field(  # type: ignore[assignment]
        None, ge=1, le=512, description="Parallel environments; num_envs * rollout_length <= 1,000,000."
    )
    device: Device = Field("auto", description="auto picks CUDA when present.")
    torch_threads: int = Field(
        1, ge=1, le=64, description="CPU threads for torch; one is fastest for small networks."
    )

    learning_rate: float = Field(None, gt=0, le=1.0)  # type: ignore[assignment]
    anneal_lr: bool = Field(None, description="Decay learning rate (and PPO clip) to 0.")  # type: ignore[assignment]
    gamma: float = Field(0.99, ge=0.0, le=1.0)
    gae_lambda: float | None = Field(None, ge=0.0, le=1.0)
    ent_coef: float = Field(None, ge=0.0, le=1.0)  # type: ignore[assignment]
    vf_coef: float | None = Field(0.5, ge=0.0, le=10.0)
    clip_range: float | None = Field(0.2, gt=0.0, le=1.0)
    epochs: int | None = Field(None, ge=1, le=100)
    target_kl: float | None = Field(
        None, gt=0.0, le=10.0, description="PPO: end the epochs once an epoch's mean approx KL exceeds it."
    )
    minibatches: int = Field(  # type: ignore[assignment]
        None,
        ge=1,
        le=1024,
        description="At most num_envs * ceil(rollout_length / bptt_length) (the sequence chunks).",
    )
    rollout_length: int = Field(  # type: ignore[assignment]
        None,
        ge=1,
        le=8192,
        description="Steps per env per update (reinforce: at least num_envs x this, in whole episodes); "
        "num_envs * rollout_length <= 1,000,000.",
    )
    max_grad_norm: float = Field(None, gt=0.0, le=1000.0)  # type: ignore[assignment]
    normalize_advantages: bool = Field(None)  # type: ignore[assignment]
    normalize_obs: bool = Field(
        False,
        description="Normalise observations by their running mean and variance, clipped to ±10 (as SB3's "
        "VecNormalize); the statistics are saved with the policy and applied inside its ONNX graph. "
        "Vector observations only (pixel frames are scaled by the CNN).",
    )
    normalize_reward: bool = Field(
        False,
        description="Train on rewards divided by the running std of the discounted return, clipped to ±10 "
        "(not centred); reported returns stay raw.",
    )

    encoder: Encoder = Field(  # type: ignore[assignment]
        None,
        description="dense: a ReLU layer of hidden_size before the core; none: the core reads observations; "
        "cnn: the Nature CNN, for pixel envs (their default and only choice).",
    )
    hidden_size: int = Field(64, ge=1, le=2048)
    num_layers: int = Field(1, ge=1, le=8, description="Recurrent layers (gru, lstm).")
    window_length: int = Field(8, ge=1, le=256, description="Observations seen by `window`.")
    bptt_length: int | None = Field(
        None,
        ge=1,
        le=8192,
        description="Truncated BPTT chunk length, bptt_length <= rollout_length; default: whole rollout.",
    )

    frame_stack: Literal[1, 4] | None = Field(
        None, description="Atari: frames per observation; with 1 the memory core must do the remembering."
    )
    repeat_action_probability: float | None = Field(
        None, ge=0.0, le=1.0, description="Atari: sticky actions (0.25 as in ALE v5)."
    )
    episodic_life: bool | None = Field(
        None, description="Atari: a lost life ends the episode for learning; the game goes on."
    )
    flicker: float | None = Field(
        None, ge=0.0, le=1.0, description="Pixel envs: probability that each observed frame is blanked."
    )
    previous_action: bool | None = Field(
        None, description="POPGym: append the previous action to each observation (zeros at episode starts)."
    )
    clip_rewards: bool = Field(  # type: ignore[assignment]
        None, description="Train on sign(reward); returns stay the game score. Default: on for Atari only."
    )
    bf16: bool = Field(False, description="CUDA: run the encoder in bf16 autocast (no effect on the CPU).")

    eval_interval: int = Field(
        0,
        ge=0,
        le=100_000_000,
        description="Evaluate each time training passes a multiple of this many env steps, and at the "
        "end; 0 = only at the end.",
    )
    eval_episodes: int = Field(
        10,
        ge=0,
        le=1000,
        description="Episodes per evaluation, on envs seeded apart from training's; 0 = no evaluation.",
    )
    eval_deterministic: bool = Field(
        True,
        description="Evaluate with the most likely action (a Gaussian's mean) instead of sampled ones.",
    )
    checkpoint_interval: int = Field(
        50_000,
        ge=0,
        le=100_000_000,
        description="Env steps between checkpoints; 0 = only at the end.",
    )

    @field_validator("env_id")
    @classmethod
    def _env_in_allow_list(cls, env_id: str) -> str:
        if env_id not in ENVS:
            allowed = ", ".join(sorted(ENVS))
            raise ValueError(f"unknown environment {env_id!r}; allowed: {allowed}")
        return env_id

    @field_validator(*ENV_OPTIONS)
    @classmethod
    def _option_applies_to_env(cls, value: Any, info: ValidationInfo) -> Any:
        env = ENVS.get(info.data.get("env_id", ""))
        if value is not None and env is not None and info.field_name not in env.options:
            raise PydanticCustomError(
                "not_applicable",
                "does not apply to {env} (its options: {options})",
                {"env": env.id, "options": ", ".join(env.options) or "none"},
            )
        return value

    @field_validator("encoder")
    @classmethod
    def _encoder_fits_observations(cls, value: str, info: ValidationInfo) -> str:
        env = ENVS.get(info.data.get("env_id", ""))
        if env is not None and (value == "cnn") != env.pixels:
            seen = "images" if env.pixels else "vectors"
            fits = "cnn" if env.pixels else "dense or none"
            raise ValueError(f"{env.id} observes {seen}: use {fits}")
        return value

    @field_validator("normalize_obs")
    @classmethod
    def _normalize_vector_observations(cls, value: bool, info: ValidationInfo) -> bool:
        env = ENVS.get(info.data.get("env_id", ""))
        if value and env is not None and env.pixels:
            raise ValueError(
                f"{env.id} observes uint8 frames, which the cnn encoder scales itself; "
                "normalize_obs is for vector observations"
            )
        return value

    @field_validator(*_ALGORITHM_ONLY)
    @classmethod
    def _applies_to_algo(cls, value: Any, info: ValidationInfo) -> Any:
        algo = info.data.get("algo")  # validated first: it is the first field
        why = NOT_APPLYING.get(algo, {}).get(info.field_name or "") if algo else None
        if value is not None and why is not None:
            raise PydanticCustomError(
                "not_applicable", "does not apply to {algo} ({why})", {"algo": algo.value, "why": why}
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _fill_algorithm_defaults(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        try:
            algo = Algorithm(data.get("algo", Algorithm.ppo))
        except ValueError:
            return data  # the field validator reports the bad algorithm
        ignored = NOT_APPLYING[algo]
        given = {k: v for k, v in data.items() if v is not None}
        if (info.context or {}).get("saved"):
            # Specs stored before NOT_APPLYING existed hold every field.
            given = {k: v for k, v in given.items() if k not in ignored}
        defaults = {
            k: v
            for k, v in {
                **ALGORITHM_DEFAULTS[algo],
                **env_defaults(data.get("env_id", cls.model_fields["env_id"].default), algo),
            }.items()
            if k not in ignored
        }
        merged = {**defaults, **dict.fromkeys(ignored), **given}
        if "minibatches" not in given:
            # A default must never make a small spec invalid: with few envs there may be
            # fewer sequence chunks than the default number of minibatches.
            try:
                rollout = int(merged["rollout_length"])
                chunks = int(merged["num_envs"]) * -(-rollout // int(merged.get("bptt_length") or rollout))
                merged["minibatches"] = max(1, min(merged["minibatches"], chunks))
            except (TypeError, ValueError, ZeroDivisionError):
                pass  # the field validators report the bad sizes
        return merged

    @model_validator(mode="after")
    def _check_sizes(self) -> TrainSpec:
        if self.bptt_length is not None and self.bptt_length > self.rollout_length:
            raise ValueError("bptt_length must not exceed rollout_length")
        batch = self.num_envs * self.rollout_length
        if batch > 1_000_000:
            raise ValueError(f"num_envs * rollout_length = {batch} exceeds 1,000,000")
        if self.minibatches > self.num_envs * self.chunks_per_env:
            raise ValueError(
                f"minibatches ({self.minibatches}) exceeds the number of sequence chunks "
                f"(num_envs * rollout_length / bptt_length = {self.num_envs * self.chunks_per_env})"
            )
        return self

    @model_validator(mode="after")
    def _fits_in_memory(self, info: ValidationInfo) -> TrainSpec:
        # An out-of-memory kill looks like a lost worker, and the job would be re-queued
        # onto the next one: refuse the spec here, naming what makes it large (unless
        # `from_saved(..., check_memory=False)` reads back a run that exists).
        if (info.context or {}).get("check_memory") is False:
            return self
        limit = memory_limit()
        needed = estimate(self)
        if needed.total > limit:
            raise ValueError(needed.explain(limit))
        return self

    @model_serializer(mode="wrap")
    def _leave_out_fields_that_do_not_apply(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        for name in NOT_APPLYING[self.algo]:
            data.pop(name, None)
        for name in ENV_OPTIONS:
            if name not in ENVS[self.env_id].options:
                data.pop(name, None)
        return data

    def env_options(self) -> EnvOptions:
        """The options this spec's env is built with (the defaults for options it does not take)."""
        given = {name: getattr(self, name) for name in ENV_OPTIONS if getattr(self, name) is not None}
        return EnvOptions(**given)

    @classmethod
    def from_saved(cls, data: str | bytes | dict[str, Any], *, check_memory: bool = True) -> TrainSpec:
        """A spec that a run or job stored (a dump, JSON or dict), also one from before NOT_APPLYING.

        `check_memory=False` reads back the spec of a run that exists (to rebuild its
        policy) even if the memory limit was lowered since it started.
        """
        context = {"saved": True, "check_memory": check_memory}
        if isinstance(data, str | bytes):
            return cls.model_validate_json(data, context=context)
        return cls.model_validate(data, context=context)

    @property
    def chunk_length(self) -> int:
        """Steps per sequence chunk that the update replays from a stored state."""
        return self.bptt_length or self.rollout_length

    @property
    def chunks_per_env(self) -> int:
        """Sequence chunks each env column is cut into for the update."""
        return -(-self.rollout_length // self.chunk_length)

    @classmethod
    def from_file(cls, path: str | Path) -> TrainSpec:
        """Load a spec from a YAML or JSON file."""
        text = Path(path).read_text()
        data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
        return cls.model_validate(data or {})


def applying_fields(algo: Algorithm) -> list[str]:
    """The spec fields that `algo` uses, in the spec's order."""
    return [name for name in TrainSpec.model_fields if name not in NOT_APPLYING[algo]]
