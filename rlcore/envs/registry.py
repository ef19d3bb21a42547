"""The allow-list of environments, their options, and the factory that builds them.

Only the ids in ``ENVS`` can be built. Each family module (``classic``, ``memory_tasks``,
``atari``) registers a fixed builder function per id with ``register_builders``; nothing
here imports a name a user supplied. This module is light on purpose: ``rlcore.spec``
imports it to validate job specs, so it must not load ALE or torch. Everything a user is
told about an env (``EnvInfo``, Atari action meanings included) is a static table here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

if TYPE_CHECKING:
    from gymnasium.vector import VectorEnv

__all__ = [
    "ATARI_GAMES",
    "CUE_RECALL_DELAY",
    "CUE_RECALL_PIXELS_DELAY",
    "ENVS",
    "FLICKER_PROB",
    "AtariGame",
    "EnvInfo",
    "EnvOptions",
    "EnvStateNotSupported",
    "check_options",
    "get_env_state",
    "make_vec_env",
    "observation_shape",
    "register_builders",
    "set_env_state",
    "supports_state",
]

CUE_RECALL_DELAY = 8
# Short enough that a CNN learns the pixel task in minutes on a CPU.
CUE_RECALL_PIXELS_DELAY = 4
FLICKER_PROB = 0.5  # CartPoleFlicker-v1's blanking probability


@dataclass(frozen=True)
class EnvOptions:
    """Per-job settings of an env family; plain types so a job spec can carry them.

    ``frame_stack`` (1 or 4), ``repeat_action_probability`` (sticky actions, 0.25 as in
    ALE v5) and ``episodic_life`` (a lost life ends the episode for learning, the game
    goes on) apply to Atari; ``flicker`` (each observation is blanked with this
    probability, Hausknecht & Stone 2015 use 0.5) to Atari and CueRecallPixels-v0.
    """

    frame_stack: int = 4
    repeat_action_probability: float = 0.25
    episodic_life: bool = False
    flicker: float = 0.0

    def __post_init__(self) -> None:
        if self.frame_stack not in (1, 4):
            raise ValueError(f"option frame_stack must be 1 or 4, got {self.frame_stack!r}")
        if not 0.0 <= self.repeat_action_probability <= 1.0:
            raise ValueError(
                f"option repeat_action_probability must be in [0, 1], got {self.repeat_action_probability!r}"
            )
        if not isinstance(self.episodic_life, bool):
            raise ValueError(f"option episodic_life must be a bool, got {self.episodic_life!r}")
        if not 0.0 <= self.flicker <= 1.0:
            raise ValueError(f"option flicker must be in [0, 1], got {self.flicker!r}")

    def changed(self) -> tuple[str, ...]:
        """Names of the options set to something other than their default."""
        default = EnvOptions()
        return tuple(f.name for f in fields(self) if getattr(self, f.name) != getattr(default, f.name))


OPTION_NAMES: tuple[str, ...] = tuple(f.name for f in fields(EnvOptions))
_ATARI_OPTIONS = OPTION_NAMES


@dataclass(frozen=True, kw_only=True)
class EnvInfo:
    """What the service tells a user about an allowed environment."""

    id: str
    description: str
    solved_return: float | None
    needs_memory: bool
    max_episode_steps: int | None = None
    family: str  # "classic", "memory" or "atari": the module that builds it
    # Discrete: the meaning of each action, by index; multi_discrete and gaussian: of each
    # action dimension.
    action_names: tuple[str, ...]
    # Of one env with default options (see `observation_shape` for others).
    observation_shape: tuple[int, ...]
    # Observations are uint8 images (C, H, W) rather than float32 vectors.
    pixels: bool = False
    options: tuple[str, ...] = ()  # the EnvOptions fields this env accepts
    # The action space without building the env: "discrete" (Discrete(len(action_names))),
    # "multi_discrete" (MultiDiscrete(action_nvec)) or "gaussian" (a Box of shape
    # action_shape between action_low and action_high).
    action_kind: str = "discrete"
    action_nvec: tuple[int, ...] = ()
    action_shape: tuple[int, ...] = ()
    action_low: tuple[float, ...] = ()
    action_high: tuple[float, ...] = ()

    @property
    def num_actions(self) -> int:
        """Discrete: the number of actions; otherwise the policy head's width (sum(nvec) or d)."""
        if self.action_kind == "multi_discrete":
            return sum(self.action_nvec)
        if self.action_kind == "gaussian":
            return len(self.action_low)
        return len(self.action_names)


class AtariGame(NamedTuple):
    """An allowed Atari game: its ALE ROM name and its minimal action set's meanings."""

    rom: str
    title: str
    action_names: tuple[str, ...]


# Copied from ale_py's minimal action sets (tests check it against ALE) so that listing the
# envs never loads the emulator.
ATARI_GAMES: dict[str, AtariGame] = {
    env_id: AtariGame(rom, title, tuple(actions.split()))
    for env_id, rom, title, actions in [
        ("ALE/Pong-v5", "pong", "Pong", "NOOP FIRE RIGHT LEFT RIGHTFIRE LEFTFIRE"),
        ("ALE/Breakout-v5", "breakout", "Breakout", "NOOP FIRE RIGHT LEFT"),
        (
            "ALE/BeamRider-v5",
            "beam_rider",
            "Beam Rider",
            "NOOP FIRE UP RIGHT LEFT UPRIGHT UPLEFT RIGHTFIRE LEFTFIRE",
        ),
        (
            "ALE/SpaceInvaders-v5",
            "space_invaders",
            "Space Invaders",
            "NOOP FIRE RIGHT LEFT RIGHTFIRE LEFTFIRE",
        ),
        (
            "ALE/Seaquest-v5",
            "seaquest",
            "Seaquest",
            "NOOP FIRE UP RIGHT LEFT DOWN UPRIGHT UPLEFT DOWNRIGHT DOWNLEFT UPFIRE RIGHTFIRE LEFTFIRE "
            "DOWNFIRE UPRIGHTFIRE UPLEFTFIRE DOWNRIGHTFIRE DOWNLEFTFIRE",
        ),
        ("ALE/Qbert-v5", "qbert", "Q*bert", "NOOP FIRE UP RIGHT LEFT DOWN"),
        (
            "ALE/MsPacman-v5",
            "ms_pacman",
            "Ms. Pac-Man",
            "NOOP UP RIGHT LEFT DOWN UPRIGHT UPLEFT DOWNRIGHT DOWNLEFT",
        ),
        (
            "ALE/Enduro-v5",
            "enduro",
            "Enduro",
            "NOOP FIRE RIGHT LEFT DOWN DOWNRIGHT DOWNLEFT RIGHTFIRE LEFTFIRE",
        ),
        (
            "ALE/Asteroids-v5",
            "asteroids",
            "Asteroids",
            "NOOP FIRE UP RIGHT LEFT DOWN UPRIGHT UPLEFT UPFIRE RIGHTFIRE LEFTFIRE DOWNFIRE UPRIGHTFIRE "
            "UPLEFTFIRE",
        ),
    ]
}

ATARI_FRAME_SKIP = 4
ATARI_MAX_FRAMES = 108_000  # 30 minutes of play, the usual cap
ATARI_FRAME_SIZE = 84

_CARTPOLE_ACTIONS = ("left", "right")

ENVS: dict[str, EnvInfo] = {
    info.id: info
    for info in [
        EnvInfo(
            id="CartPole-v0",
            description="Balance a pole on a cart (200 steps).",
            solved_return=195.0,
            needs_memory=False,
            max_episode_steps=200,
            family="classic",
            action_names=_CARTPOLE_ACTIONS,
            observation_shape=(4,),
        ),
        EnvInfo(
            id="CartPole-v1",
            description="Balance a pole on a cart (500 steps).",
            solved_return=475.0,
            needs_memory=False,
            max_episode_steps=500,
            family="classic",
            action_names=_CARTPOLE_ACTIONS,
            observation_shape=(4,),
        ),
        EnvInfo(
            id="CartPoleMasked-v1",
            description="CartPole-v1 showing only cart position and pole angle; velocities are hidden.",
            solved_return=475.0,
            needs_memory=True,
            max_episode_steps=500,
            family="classic",
            action_names=_CARTPOLE_ACTIONS,
            observation_shape=(2,),
        ),
        EnvInfo(
            id="CartPoleFlicker-v1",
            description=(
                f"CartPole-v1 whose observation is all zeros with probability {FLICKER_PROB} at each step."
            ),
            solved_return=475.0,
            needs_memory=True,
            max_episode_steps=500,
            family="classic",
            action_names=_CARTPOLE_ACTIONS,
            observation_shape=(4,),
        ),
        EnvInfo(
            id="CueRecall-v0",
            description=(
                f"Name the cue shown at the first step after {CUE_RECALL_DELAY} blank steps "
                "(+1 right, -1 wrong)."
            ),
            solved_return=0.9,
            needs_memory=True,
            max_episode_steps=CUE_RECALL_DELAY + 2,
            family="memory",
            action_names=("cue 0", "cue 1"),
            observation_shape=(3,),
        ),
        EnvInfo(
            id="CueRecallPixels-v0",
            description=(
                "CueRecall drawn as 36x36 frames: name the side of the square shown at the first "
                f"step when a bar appears {CUE_RECALL_PIXELS_DELAY} blank frames later "
                "(+1 right, -1 wrong)."
            ),
            solved_return=0.9,
            needs_memory=True,
            max_episode_steps=CUE_RECALL_PIXELS_DELAY + 2,
            family="memory",
            action_names=("left", "right"),
            observation_shape=(1, 36, 36),
            pixels=True,
            options=("flicker",),
        ),
        EnvInfo(
            id="Acrobot-v1",
            description="Swing a two-link arm above a line.",
            solved_return=-100.0,
            needs_memory=False,
            max_episode_steps=500,
            family="classic",
            action_names=("torque -1", "torque 0", "torque +1"),
            observation_shape=(6,),
        ),
        EnvInfo(
            id="MountainCar-v0",
            description="Drive an underpowered car up a hill.",
            solved_return=-110.0,
            needs_memory=False,
            max_episode_steps=200,
            family="classic",
            action_names=("accelerate left", "coast", "accelerate right"),
            observation_shape=(2,),
        ),
        EnvInfo(
            id="LunarLander-v3",
            description="Land a lander on the pad (Box2D).",
            solved_return=200.0,
            needs_memory=False,
            max_episode_steps=1000,
            family="classic",
            action_names=("noop", "fire left engine", "fire main engine", "fire right engine"),
            observation_shape=(8,),
        ),
        EnvInfo(
            id="Pendulum-v1",
            description="Swing a pendulum up and keep it upright with a bounded torque.",
            solved_return=-200.0,
            needs_memory=False,
            max_episode_steps=200,
            family="classic",
            action_names=("torque",),
            observation_shape=(3,),
            action_kind="gaussian",
            action_shape=(1,),
            action_low=(-2.0,),
            action_high=(2.0,),
        ),
        EnvInfo(
            id="PendulumMasked-v1",
            description="Pendulum-v1 showing only cos and sin of the angle; the angular velocity is hidden.",
            solved_return=-200.0,
            needs_memory=True,
            max_episode_steps=200,
            family="classic",
            action_names=("torque",),
            observation_shape=(2,),
            action_kind="gaussian",
            action_shape=(1,),
            action_low=(-2.0,),
            action_high=(2.0,),
        ),
        EnvInfo(
            id="MountainCarContinuous-v0",
            description="Drive an underpowered car up a hill with a continuous force; fuel costs.",
            solved_return=90.0,
            needs_memory=False,
            max_episode_steps=999,
            family="classic",
            action_names=("force",),
            observation_shape=(2,),
            action_kind="gaussian",
            action_shape=(1,),
            action_low=(-1.0,),
            action_high=(1.0,),
        ),
        EnvInfo(
            id="LunarLanderContinuous-v3",
            description="Land a lander on the pad with throttled main and side engines (Box2D).",
            solved_return=200.0,
            needs_memory=False,
            max_episode_steps=1000,
            family="classic",
            action_names=("main engine", "side engines"),
            observation_shape=(8,),
            action_kind="gaussian",
            action_shape=(2,),
            action_low=(-1.0, -1.0),
            action_high=(1.0, 1.0),
        ),
        *(
            EnvInfo(
                id=env_id,
                description=(
                    f"Atari 2600 {game.title} (ALE v5 settings: frame skip {ATARI_FRAME_SKIP}, sticky "
                    f"actions, {ATARI_FRAME_SIZE}x{ATARI_FRAME_SIZE} grayscale frames); raw game score."
                ),
                # There is no agreed "solved" score for most games.
                solved_return=None,
                needs_memory=False,
                max_episode_steps=ATARI_MAX_FRAMES // ATARI_FRAME_SKIP,
                family="atari",
                action_names=game.action_names,
                observation_shape=(EnvOptions().frame_stack, ATARI_FRAME_SIZE, ATARI_FRAME_SIZE),
                pixels=True,
                options=_ATARI_OPTIONS,
            )
            for env_id, game in ATARI_GAMES.items()
        ),
    ]
}

# Box2D worlds hold their state in C++ objects that cannot be read out and rebuilt.
_NO_STATE_SUPPORT = frozenset({"LunarLander-v3", "LunarLanderContinuous-v3"})


class EnvStateNotSupported(NotImplementedError):
    """The environment's state cannot be saved and restored exactly."""


Builder = Callable[[EnvInfo, int, EnvOptions], "VectorEnv"]
_BUILDERS: dict[str, Builder] = {}


def register_builders(family: str, builders: Mapping[str, Builder]) -> None:
    """Called once by each family module: the builder function of each of its env ids."""
    for env_id, builder in builders.items():
        info = _check_env_id(env_id)
        if info.family != family:
            raise ValueError(f"{env_id} belongs to family {info.family!r}, not {family!r}")
        if env_id in _BUILDERS:
            raise ValueError(f"{env_id} already has a builder")
        _BUILDERS[env_id] = builder


def _check_env_id(env_id: str) -> EnvInfo:
    if env_id not in ENVS:
        allowed = ", ".join(sorted(ENVS))
        raise ValueError(f"unknown environment {env_id!r}; allowed: {allowed}")
    return ENVS[env_id]


def supports_state(env_id: str) -> bool:
    """Whether ``get_env_state`` / ``set_env_state`` work for this allowed env id."""
    _check_env_id(env_id)
    return env_id not in _NO_STATE_SUPPORT


def check_options(env_id: str, options: EnvOptions | None = None) -> EnvOptions:
    """The options to build ``env_id`` with (defaults for None).

    Raises ``ValueError`` naming the first option that was changed from its default but
    does not apply to this env (and, like ``make_vec_env``, for an unknown id).
    """
    info = _check_env_id(env_id)
    options = EnvOptions() if options is None else options
    for name in options.changed():
        if name not in info.options:
            accepted = ", ".join(info.options) or "none"
            raise ValueError(f"option {name} does not apply to {env_id} (its options: {accepted})")
    return options


def observation_shape(env_id: str, options: EnvOptions | None = None) -> tuple[int, ...]:
    """The shape of one observation of ``env_id`` built with ``options``, without building it."""
    info = _check_env_id(env_id)
    options = check_options(env_id, options)
    if info.family == "atari":
        return (options.frame_stack, ATARI_FRAME_SIZE, ATARI_FRAME_SIZE)
    return info.observation_shape


def make_vec_env(env_id: str, num_envs: int, seed: int, options: EnvOptions | None = None) -> VectorEnv:
    """Build ``num_envs`` copies of an allowed environment, reset with ``seed``.

    Raises ``ValueError`` for an id outside ``ENVS`` (the message lists the allowed ids),
    for ``num_envs < 1`` and for an option that does not apply to the env (see
    ``check_options``). See the ``rlcore.envs`` docstring for the step contract.
    """
    info = _check_env_id(env_id)
    options = check_options(env_id, options)
    if num_envs < 1:
        raise ValueError(f"num_envs must be at least 1, got {num_envs}")
    envs = _BUILDERS[env_id](info, num_envs, options)
    envs.reset(seed=seed)
    return envs


@runtime_checkable
class _Stateful(Protocol):
    def get_state(self) -> dict[str, Any]: ...

    def set_state(self, state: dict[str, Any]) -> None: ...


def _stateful(envs: VectorEnv) -> _Stateful:
    if not isinstance(envs, _Stateful):
        raise TypeError(f"{envs} was not built by make_vec_env")
    return envs


def get_env_state(envs: VectorEnv) -> dict[str, Any]:
    """Everything that decides the future of ``envs``, as plain Python types.

    Includes physics state, step counters and every RNG's bit-generator state (for Atari:
    the seeds and actions that rebuild each game); safe to store with ``torch.save`` and
    load with ``torch.load(weights_only=True)`` or JSON. Raises ``EnvStateNotSupported``
    where ``supports_state`` is False.
    """
    return _stateful(envs).get_state()


def set_env_state(envs: VectorEnv, state: dict[str, Any]) -> None:
    """Restore a ``get_env_state`` result into envs made for the same id, options and ``num_envs``.

    The next ``step`` then returns exactly what it would have returned after the save.
    Raises ``ValueError`` if the state belongs to another env id, options or size.
    """
    _stateful(envs).set_state(state)
