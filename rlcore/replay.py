"""Episode replays: everything a policy saw, did and held in memory, step by step.

`record_episodes` plays episodes of a torch policy (`rlcore.models.ActorCritic`) and
keeps, per step t: the observation it acted on, the action sent to the env, the action
distribution (probabilities; mean and std for Box actions), the value estimate, the
reward that followed, the memory (see `Replay.hidden`), each hidden variable of the env
(`rlcore.envs.hidden`) with whether observation t showed it and, on request, a frame
(the env's render of the state observation t comes from, or a drawing of observation t
where the env draws nothing): as many frames as steps.

`replay_export` loads an exported policy (`rlcore.export.load_policy`), plays one
episode on the env it was trained on and returns the `Replay` and its video, an H.264
MP4 with one frame per step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlcore.envs import ENVS, EnvOptions, HiddenVariable, hidden_values, hidden_variables
from rlcore.evaluate import EpisodeRunner, PolicyStep, policy_step
from rlcore.export import load_policy
from rlcore.frames import encode_mp4, env_frames, fit_frames, observation_frames
from rlcore.models import ActorCritic
from rlcore.models.cores import RecurrentCore

__all__ = [
    "DEFAULT_FPS",
    "MAX_STEPS",
    "Replay",
    "hidden_kind",
    "load_export",
    "memory_on",
    "record_episode",
    "record_episodes",
    "replay_export",
]

MAX_STEPS = 5_000  # the most steps one recorded episode may have
DEFAULT_FPS = 30.0


@dataclass
class Replay:
    """One recorded episode of T steps; arrays are numpy, `to_json` gives plain lists.

    `hidden` (T, H) is the policy's memory after each step: for ``gru`` and ``lstm`` its
    recurrent state, flattened (``hidden_kind`` "state"; LSTM: every layer's h, then
    every layer's c); for ``mlp``, ``gru_cell`` and ``window``, which carry no memory
    of their own (or only a buffer of past inputs), the features their heads read
    (``hidden_kind`` "features").
    """

    env_id: str
    seed: int
    deterministic: bool
    action_spec: dict[str, Any]
    action_names: tuple[str, ...]
    observations: np.ndarray  # (T, *obs_shape), what the policy acted on at each step
    actions: np.ndarray  # (T,) | (T, k) | (T, d): what the env was sent
    params: np.ndarray  # (T, P): the action distribution's parameters (logits; mean, log_std)
    values: np.ndarray  # (T,)
    rewards: np.ndarray  # (T,): the reward of step t's action
    hidden: np.ndarray  # (T, H)
    hidden_kind: str  # "state" | "features"
    state_shape: tuple[int, ...]  # of the recurrent state that `hidden` flattens ("state")
    hidden_variables: tuple[HiddenVariable, ...]
    hidden_values: dict[str, np.ndarray]  # name -> (T,): its value at observation t
    hidden_visible: dict[str, np.ndarray]  # name -> (T,) bool: observation t shows it
    end: str  # "terminated" | "truncated" | "max_steps"
    frames: np.ndarray | None = None  # (T, H, W, 3) uint8
    frame_source: str | None = None  # "render" | "observation"
    fps: float = DEFAULT_FPS

    @property
    def steps(self) -> int:
        return len(self.rewards)

    @property
    def episode_return(self) -> float:
        return float(self.rewards.sum())

    @property
    def action_probs(self) -> np.ndarray | None:
        """(T, P) probabilities; for MultiDiscrete each dimension's slice sums to 1. None for Box."""
        if self.action_spec["kind"] == "gaussian":
            return None
        logits = torch.from_numpy(self.params).double()
        sizes = self.action_spec.get("nvec", [logits.shape[-1]])
        return torch.cat([torch.softmax(part, -1) for part in logits.split(sizes, -1)], -1).numpy()

    @property
    def action_mean(self) -> np.ndarray | None:
        """(T, d) Gaussian means for Box actions (raw, before clipping), else None."""
        if self.action_spec["kind"] != "gaussian":
            return None
        return self.params[:, : self.params.shape[1] // 2]

    @property
    def action_std(self) -> np.ndarray | None:
        if self.action_spec["kind"] != "gaussian":
            return None
        return np.exp(self.params[:, self.params.shape[1] // 2 :])

    def steps_since_visible(self, name: str) -> np.ndarray:
        """(T,) int: steps since observation last showed `name`, or since the episode
        started where no observation did (0 at the step that shows it, or at t = 0)."""
        visible = self.hidden_visible[name]
        t = np.arange(self.steps)
        last = np.maximum.accumulate(np.where(visible, t, 0))
        return t - last

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (lists, no NaN): every array per step; the frames are in `video()`."""
        pixels = self.observations.ndim > 2
        return {
            "env_id": self.env_id,
            "seed": self.seed,
            "deterministic": self.deterministic,
            "steps": self.steps,
            "episode_return": self.episode_return,
            "end": self.end,
            "fps": self.fps,
            "frame_source": self.frame_source,
            "action": {**self.action_spec, "names": list(self.action_names)},
            "observation_shape": list(self.observations.shape[1:]),
            # Pixel observations are in the video; as lists they would be megabytes.
            "observations": None if pixels else _floats(self.observations),
            "actions": self.actions.tolist(),
            "action_probs": None if self.action_probs is None else _floats(self.action_probs),
            "action_mean": None if self.action_mean is None else _floats(self.action_mean),
            "action_std": None if self.action_std is None else _floats(self.action_std),
            "values": _floats(self.values),
            "rewards": _floats(self.rewards),
            "hidden": {
                "kind": self.hidden_kind,
                "size": int(self.hidden.shape[1]),
                "state_shape": list(self.state_shape),
                "values": _floats(self.hidden),
            },
            "hidden_variables": [
                {
                    **variable.to_json(),
                    "values": (
                        _floats(self.hidden_values[variable.name])
                        if variable.kind == "continuous"
                        else self.hidden_values[variable.name].tolist()
                    ),
                    "visible": self.hidden_visible[variable.name].tolist(),
                    "steps_since_visible": self.steps_since_visible(variable.name).tolist(),
                }
                for variable in self.hidden_variables
            ],
        }

    def video(self) -> bytes:
        """The frames as an H.264 MP4 (`rlcore.frames.encode_mp4`): frame t, at t / fps, is step t."""
        if self.frames is None:
            raise ValueError("this replay was recorded without frames")
        return encode_mp4(self.frames, self.fps)


def _floats(array: np.ndarray, digits: int = 6) -> list[Any]:
    """Rounded floats (JSON stays small and readable); non-finite values become None."""
    rounded = np.round(np.asarray(array, dtype=np.float64), digits)
    if np.isfinite(rounded).all():
        return rounded.tolist()
    return np.where(np.isfinite(rounded), rounded, None).tolist()


def hidden_kind(policy: ActorCritic) -> str:
    """What `Replay.hidden` holds for `policy`: its recurrent "state" (gru, lstm), else "features"."""
    return "state" if isinstance(policy.core, RecurrentCore) else "features"


def _memory(policy: ActorCritic, step: PolicyStep) -> np.ndarray:
    """What `Replay.hidden` holds for each env of a step, (B, H) float32."""
    source = step.state if hidden_kind(policy) == "state" else step.features
    return source.reshape(source.shape[0], -1).float().cpu().numpy()


@torch.no_grad()
def memory_on(
    policy: ActorCritic, replays: list[Replay], device: torch.device | str = "cpu"
) -> list[np.ndarray]:
    """`policy`'s memory (as `Replay.hidden`, (T, H)) along each replay's observations.

    The policy is fed the observations another policy acted on, step by step from a zero
    state at each episode's start, so two policies' memories can be compared on the same
    episodes. All episodes run side by side, one batched step per time step.
    """
    if not replays:
        return []
    policy = policy.to(device).eval()
    longest = max(r.steps for r in replays)
    obs = np.zeros((longest, len(replays), *replays[0].observations.shape[1:]), replays[0].observations.dtype)
    for i, replay in enumerate(replays):
        obs[: replay.steps, i] = replay.observations
    state = policy.initial_state(len(replays), device)
    starts = np.zeros(len(replays), dtype=bool)
    memory = []
    for t in range(longest):
        step = policy_step(policy, obs[t], starts | (t == 0), state, deterministic=True)
        state = step.state
        memory.append(_memory(policy, step))
    stacked = np.stack(memory, axis=1)  # (episodes, longest, H)
    return [stacked[i, : replay.steps] for i, replay in enumerate(replays)]


class _Episode:
    """One env's steps so far, as lists."""

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {}

    def add(self, **values: Any) -> None:
        for key, value in values.items():
            self.columns.setdefault(key, []).append(value)

    def stack(self, key: str) -> np.ndarray:
        return np.stack(self.columns[key])


def _check_max_steps(max_steps: int) -> None:
    if not 1 <= max_steps <= MAX_STEPS:
        raise ValueError(f"max_steps must be between 1 and {MAX_STEPS}, got {max_steps}")


@torch.no_grad()
def record_episodes(
    policy: ActorCritic,
    env_id: str,
    episodes: int,
    *,
    seed: int = 0,
    options: EnvOptions | None = None,
    deterministic: bool = False,
    max_steps: int = MAX_STEPS,
    frames: bool = False,
    device: torch.device | str = "cpu",
) -> list[Replay]:
    """Play `episodes` episodes of `policy` on `env_id` and record every step (see `Replay`).

    Envs and actions are seeded by `seed` (a torch generator samples the actions unless
    `deterministic` takes the most likely one), so a call repeats exactly. An episode
    longer than `max_steps` is cut there (`end` "max_steps"). With `frames`, every step
    gets a frame: the env's render where it draws (classic control), else a drawing of
    the observation; a render is made for every env at every step, so ask for frames
    with few episodes. Episodes come in the order they finished.
    """
    _check_max_steps(max_steps)
    policy = policy.to(device).eval()
    generator = torch.Generator(device).manual_seed(seed)
    info = ENVS[env_id]
    replays: list[Replay] = []
    with EpisodeRunner(env_id, episodes, seed, options, max_steps) as runner:
        envs = runner.envs
        variables = hidden_variables(envs)
        rendered = frames and env_frames(envs) is not None
        state = policy.initial_state(len(runner.quota), device)
        open_episodes = [_Episode() for _ in runner.quota]
        while not runner.done:
            obs, counting = runner.obs, runner.counting
            hidden = hidden_values(envs)
            pictures = env_frames(envs) if rendered else None
            step = policy_step(policy, obs, runner.starts, state, generator, deterministic)
            state = step.state
            memory = _memory(policy, step)
            params = step.params.float().cpu().numpy()
            values = step.value.float().cpu().numpy()
            outcome = runner.step(step.actions)
            for i in np.flatnonzero(counting):
                episode = open_episodes[i]
                episode.add(
                    obs=obs[i],
                    action=step.actions[i],
                    params=params[i],
                    value=values[i],
                    reward=float(outcome.reward[i]),
                    memory=memory[i],
                    **{f"hidden:{name}": hv.values[i] for name, hv in hidden.items()},
                    **{f"visible:{name}": hv.visible[i] for name, hv in hidden.items()},
                )
                if pictures is not None:
                    episode.add(frame=pictures[i])
                if outcome.finished[i]:
                    end = (
                        "max_steps"
                        if outcome.cut[i]
                        else "terminated"
                        if outcome.terminated[i]
                        else "truncated"
                    )
                    replays.append(
                        _replay(
                            episode, policy, env_id, info.action_names, variables, end, seed, deterministic
                        )
                    )
                    open_episodes[i] = _Episode()
            # Uncounted steps (an env past its share, or playing out a cut episode) are dropped.
            for i in np.flatnonzero(~runner.counting):
                open_episodes[i] = _Episode()
    for replay in replays if frames else ():
        if replay.frames is None:
            replay.frames = observation_frames(replay.observations)
            replay.frame_source = "observation"
        replay.frames = fit_frames(replay.frames)
    return replays


def _replay(
    episode: _Episode,
    policy: ActorCritic,
    env_id: str,
    action_names: tuple[str, ...],
    variables: tuple[HiddenVariable, ...],
    end: str,
    seed: int,
    deterministic: bool,
) -> Replay:
    columns = episode.columns
    return Replay(
        env_id=env_id,
        seed=seed,
        deterministic=deterministic,
        action_spec=dict(policy.action_spec),
        action_names=action_names,
        observations=episode.stack("obs"),
        actions=episode.stack("action"),
        params=episode.stack("params"),
        values=episode.stack("value"),
        rewards=np.asarray(columns["reward"], dtype=np.float64),
        hidden=episode.stack("memory"),
        hidden_kind=hidden_kind(policy),
        state_shape=tuple(policy.state_shape),
        hidden_variables=variables,
        hidden_values={v.name: episode.stack(f"hidden:{v.name}") for v in variables},
        hidden_visible={v.name: episode.stack(f"visible:{v.name}").astype(bool) for v in variables},
        end=end,
        frames=episode.stack("frame") if "frame" in columns else None,
        frame_source="render" if "frame" in columns else None,
    )


def record_episode(
    policy: ActorCritic,
    env_id: str,
    *,
    seed: int = 0,
    options: EnvOptions | None = None,
    deterministic: bool = False,
    max_steps: int = 1_000,
    frames: bool = True,
    device: torch.device | str = "cpu",
) -> Replay:
    """One episode of `policy`, with frames by default (see `record_episodes`)."""
    (replay,) = record_episodes(
        policy,
        env_id,
        1,
        seed=seed,
        options=options,
        deterministic=deterministic,
        max_steps=max_steps,
        frames=frames,
        device=device,
    )
    return replay


def replay_export(
    path: str | Path,
    *,
    seed: int = 0,
    deterministic: bool = False,
    max_steps: int = 1_000,
    fps: float = DEFAULT_FPS,
) -> tuple[Replay, bytes]:
    """Play one episode of an exported policy on the env it trained on: the replay and its MP4.

    `path` is an export folder (or one of its files), as `rlcore.export.load_policy`
    takes; the env and its options come from the export's metadata. Raises ValueError
    for a broken export, one without an env id, or a bad `max_steps`.
    """
    _check_max_steps(max_steps)
    if not (math.isfinite(fps) and 1 <= fps <= 60):
        raise ValueError(f"fps must be between 1 and 60, got {fps}")
    policy, env_id, options = load_export(path)
    replay = record_episode(
        policy, env_id, seed=seed, options=options, deterministic=deterministic, max_steps=max_steps
    )
    replay.fps = fps
    return replay, replay.video()


def load_export(path: str | Path) -> tuple[ActorCritic, str, EnvOptions | None]:
    """An exported policy with the env id and options it trained on, from its metadata.

    Raises ValueError for a broken export or one that names no known env.
    """
    loaded = load_policy(path)
    env_id = loaded.metadata.get("env_id")
    if env_id not in ENVS:
        raise ValueError(f"{path}: the export names no known env (env_id {env_id!r})")
    saved_options = loaded.metadata.get("env_options")
    return loaded.policy, env_id, EnvOptions(**saved_options) if saved_options else None
