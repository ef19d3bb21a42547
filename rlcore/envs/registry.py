"""The allow-list of environments, their options, and the factory that builds them.

Only the ids in ``ENVS`` can be built. Each family module (``classic``, ``memory_tasks``,
``atari``, ``popgym``) registers a fixed builder function per id with ``register_builders``;
the operator's own envs join with ``add_env`` when ``rlcore.envs.plugins`` loads them at
start-up. Nothing here imports a name a user supplied. This module is light on purpose:
``rlcore.spec`` imports it to validate job specs, so it must not load ALE or torch. Everything a user is
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
    "POPGYM_ENVS",
    "AtariGame",
    "EnvInfo",
    "EnvOptions",
    "EnvStateNotSupported",
    "PopgymEnv",
    "add_env",
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
    probability, Hausknecht & Stone 2015 use 0.5) to Atari and CueRecallPixels-v0;
    ``previous_action`` (the previous action is appended to each observation, one-hot for
    discrete actions, zeros at an episode's first step: POPGym's protocol) to POPGym.
    """

    frame_stack: int = 4
    repeat_action_probability: float = 0.25
    episodic_life: bool = False
    flicker: float = 0.0
    previous_action: bool = False

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
        if not isinstance(self.previous_action, bool):
            raise ValueError(f"option previous_action must be a bool, got {self.previous_action!r}")

    def changed(self) -> tuple[str, ...]:
        """Names of the options set to something other than their default."""
        default = EnvOptions()
        return tuple(f.name for f in fields(self) if getattr(self, f.name) != getattr(default, f.name))


OPTION_NAMES: tuple[str, ...] = tuple(f.name for f in fields(EnvOptions))
_ATARI_OPTIONS = ("frame_stack", "repeat_action_probability", "episodic_life", "flicker")
_POPGYM_OPTIONS = ("previous_action",)


@dataclass(frozen=True, kw_only=True)
class EnvInfo:
    """What the service tells a user about an allowed environment."""

    id: str
    description: str
    solved_return: float | None
    needs_memory: bool
    max_episode_steps: int | None = None
    # "classic", "memory", "atari" or "popgym": the module that builds it; "plugin": an
    # operator's package (rlcore.envs.plugins).
    family: str
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


class PopgymEnv(NamedTuple):
    """An allowed POPGym env: the popgym class that ``rlcore.envs.popgym`` builds and its
    sizes, copied here (tests check them against popgym) so listing envs never imports it."""

    module: str  # of popgym.envs
    class_name: str
    max_episode_steps: int
    observation_size: int  # of the flat encoding (one-hot for discrete parts)
    action_size: int  # width of the previous action appended by ``previous_action``
    action_names: tuple[str, ...]  # per discrete action; per component for other action spaces


POPGYM_LEVELS = ("Easy", "Medium", "Hard")
_SUIT_NAMES = ("spades", "diamonds", "clubs", "hearts")  # popgym.core.deck.SUITS order
_MAZE_MOVES = ("left", "right", "up", "down")


# The POPGym tasks whose actions are not Discrete: board sides (row, column) per level.
_POPGYM_BOARD_SIDES = {"Battleship": (8, 10, 12), "MineSweeper": (4, 6, 8)}


def _popgym_actions(class_name: str) -> dict[str, Any]:
    """EnvInfo's action fields for a POPGym class: torque for the pendulums, (row, column)
    for the board games, the defaults (Discrete) for the rest."""
    level = next(level for level in POPGYM_LEVELS if class_name.endswith(level))
    task = class_name.removesuffix(level)
    if task.endswith("Pendulum"):
        return {"action_kind": "gaussian", "action_shape": (1,), "action_low": (-2.0,), "action_high": (2.0,)}
    if task in _POPGYM_BOARD_SIDES:
        side = _POPGYM_BOARD_SIDES[task][POPGYM_LEVELS.index(level)]
        return {"action_kind": "multi_discrete", "action_nvec": (side, side)}
    return {}


def _numbered(prefix: str, count: int) -> tuple[str, ...]:
    return tuple(f"{prefix} {i}" for i in range(count))


def _discrete(names: tuple[str, ...]) -> tuple[int, tuple[str, ...]]:
    return len(names), names


# Per task: popgym module, description, and per level (Easy, Medium, Hard) its maximum
# episode length, flat observation size and (previous-action width, action names).
_POPGYM_TASKS: list[tuple[str, str, str, list[tuple[int, int, tuple[int, tuple[str, ...]]]]]] = [
    (
        "RepeatFirst",
        "repeat_first",
        "Cards are dealt one a step; name the suit of the first card at every step.",
        [(51, 4, _discrete(_SUIT_NAMES)), (415, 4, _discrete(_SUIT_NAMES)), (831, 4, _discrete(_SUIT_NAMES))],
    ),
    (
        "RepeatPrevious",
        "repeat_previous",
        "Cards are dealt one a step; name the suit of the card dealt k steps earlier.",
        [(51, 4, _discrete(_SUIT_NAMES)), (103, 4, _discrete(_SUIT_NAMES)), (155, 4, _discrete(_SUIT_NAMES))],
    ),
    (
        "Autoencode",
        "autoencode",
        "Watch a sequence of cards, then name their suits back in reverse order.",
        [
            (103, 6, _discrete(_SUIT_NAMES)),
            (207, 6, _discrete(_SUIT_NAMES)),
            (311, 6, _discrete(_SUIT_NAMES)),
        ],
    ),
    (
        "CountRecall",
        "count_recall",
        "Cards are dealt one a step; say how many times the queried card was dealt so far.",
        [
            (51, 4, _discrete(_numbered("count", 27))),
            (103, 8, _discrete(_numbered("count", 27))),
            (207, 26, _discrete(_numbered("count", 17))),
        ],
    ),
    (
        "PositionOnlyCartPole",
        "position_only_cartpole",
        "CartPole showing only the cart position and the pole angle.",
        [(n, 2, _discrete(_CARTPOLE_ACTIONS)) for n in (200, 400, 600)],
    ),
    (
        "VelocityOnlyCartPole",
        "velocity_only_cartpole",
        "CartPole showing only the cart and pole velocities.",
        [(n, 2, _discrete(_CARTPOLE_ACTIONS)) for n in (200, 400, 600)],
    ),
    (
        "NoisyPositionOnlyCartPole",
        "noisy_position_only_cartpole",
        "CartPole showing only the cart position and pole angle, with Gaussian noise.",
        [(200, 2, _discrete(_CARTPOLE_ACTIONS))] * 3,
    ),
    (
        "MultiarmedBandit",
        "multiarmed_bandit",
        "Episodic multi-armed bandit: each step pulls an arm and observes only whether it paid.",
        [(n, 2, _discrete(_numbered("arm", n // 20))) for n in (200, 400, 600)],
    ),
    (
        "HigherLower",
        "higher_lower",
        "Guess whether the next card drawn is higher or lower than the last; counting cards helps.",
        [(52 * decks - 1, 13, _discrete(("higher", "lower"))) for decks in (1, 2, 3)],
    ),
    (
        "LabyrinthExplore",
        "labyrinth_explore",
        "Explore a procedurally generated maze, seeing only the cells around the agent.",
        [(1023, 50, _discrete(_MAZE_MOVES))] * 3,
    ),
    (
        "LabyrinthEscape",
        "labyrinth_escape",
        "Find the exit of a procedurally generated maze, seeing only the cells around the agent.",
        [(1023, 50, _discrete(_MAZE_MOVES))] * 3,
    ),
    (
        "PositionOnlyPendulum",
        "position_only_pendulum",
        "Swing up a pendulum seeing only its angle (cos, sin); continuous torque in [-2, 2].",
        [(n, 2, (1, ("torque",))) for n in (200, 150, 100)],
    ),
    (
        "NoisyPositionOnlyPendulum",
        "noisy_position_only_pendulum",
        "Swing up a pendulum seeing only its noisy angle (cos, sin); continuous torque in [-2, 2].",
        [(200, 2, (1, ("torque",)))] * 3,
    ),
    (
        "Battleship",
        "battleship",
        "Battleship on a hidden board: choose a (row, column) to fire at; observe only hit or miss.",
        [(side * side, 2, (2 * side, ("row", "column"))) for side in (8, 10, 12)],
    ),
    (
        "MineSweeper",
        "minesweeper",
        "MineSweeper on a hidden board: uncover a (row, column), observe its count of adjacent mines.",
        [
            (14, 3, (8, ("row", "column"))),
            (30, 7, (12, ("row", "column"))),
            (54, 10, (16, ("row", "column"))),
        ],
    ),
    (
        "Concentration",
        "concentration",
        "The card game Concentration: flip face-down cards two at a time to find matching pairs.",
        [
            (104, 156, _discrete(_numbered("card", 52))),
            (208, 312, _discrete(_numbered("card", 104))),
            (104, 728, _discrete(_numbered("card", 52))),
        ],
    ),
]

POPGYM_ENVS: dict[str, PopgymEnv] = {
    f"popgym/{task}{level}": PopgymEnv(module, f"{task}{level}", steps, obs_size, action_size, names)
    for task, module, _, sizes in _POPGYM_TASKS
    for level, (steps, obs_size, (action_size, names)) in zip(POPGYM_LEVELS, sizes, strict=True)
}
_POPGYM_DESCRIPTIONS = {
    f"popgym/{task}{level}": f"POPGym {task} ({level}): {description}"
    for task, _, description, _ in _POPGYM_TASKS
    for level in POPGYM_LEVELS
}

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
        *(
            EnvInfo(
                id=env_id,
                description=_POPGYM_DESCRIPTIONS[env_id],
                solved_return=None,  # POPGym defines none
                needs_memory=True,
                max_episode_steps=env.max_episode_steps,
                family="popgym",
                action_names=env.action_names,
                observation_shape=(env.observation_size,),
                options=_POPGYM_OPTIONS,
                **_popgym_actions(env.class_name),
            )
            for env_id, env in POPGYM_ENVS.items()
        ),
    ]
}

# Box2D worlds hold their state in C++ objects that cannot be read out and rebuilt; plugin
# envs without get_state / set_state are added by `add_env`.
_NO_STATE_SUPPORT = {"LunarLander-v3", "LunarLanderContinuous-v3"}


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


def add_env(info: EnvInfo, builder: Builder, *, stateful: bool) -> None:
    """Put an env from outside the built-in families on the allow-list, with its builder.

    ``stateful``: whether its envs have ``get_state`` / ``set_state``. Raises
    ``ValueError`` for an id already allowed: nothing replaces an env.
    """
    if info.id in ENVS:
        raise ValueError(f"{info.id} is already allowed (family {ENVS[info.id].family!r})")
    ENVS[info.id] = info
    _BUILDERS[info.id] = builder
    if not stateful:
        _NO_STATE_SUPPORT.add(info.id)


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
    if info.family == "popgym" and options.previous_action:
        env = POPGYM_ENVS[env_id]
        return (env.observation_size + env.action_size,)
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
