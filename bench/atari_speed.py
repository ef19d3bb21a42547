"""Atari training speed: rlcore's PPO (CNN+lstm, CNN+mlp) against sb3's, on Pong, same process.

    python bench/atari_speed.py                           # CPU, all four rows, ~10 minutes on 2 cores
    python bench/atari_speed.py --quick                   # tiny budgets: a smoke run of every row
    python bench/atari_speed.py --device cuda --envs 8,64,256   # GPU rows (rlcore only)

Needs the `bench` extra (`pip install -c constraints.txt -e '.[bench]'`) for the sb3 rows;
it brings opencv (`opencv-python-headless`) for sb3's own Atari wrappers. Without opencv
the sb3 rows run on ALE's C++ vector env instead (see "sb3 envs" below).

Each row trains once, one row after another in this process, and reports training env
steps/s (rollout and update together) over a fixed budget of env steps that starts after
a warm-up of --warmup-updates updates (first-call costs: allocations, ROM loads). For
rlcore the clock is the trainer's own (`perf/wall_time` of the sink's per-update points),
from the end of the last warm-up update to the end of the last update; for sb3 it is a
callback's clock at the same points (rollout start after the warm-up updates, and after
the last update). Rows:

  ours-lstm   rlcore PPO, Nature CNN + LSTM 128, ALE/Pong-v5 with frame_stack 1: the spec
              defaults for Atari (CleanRL's ppo_atari_lstm: 8 envs x 128 steps, 4
              minibatches, 4 epochs, lr 2.5e-4 annealed, clip 0.1, ent 0.01; see
              FAMILY_DEFAULTS in rlcore/spec.py).
  ours-mlp    the same with model mlp and frame_stack 4 (feed-forward, for reference).
  sb3c-lstm   sb3-contrib RecurrentPPO("CnnLstmPolicy") with rl-zoo3's Atari settings
              (hyperparams/ppo_lstm.yml, `atari`): AtariWrapper(terminal_on_life_loss=False),
              frame_stack 4, 8 envs, n_steps 128, batch 256, 4 epochs, lr and clip 2.5e-4
              and 0.1 decaying linearly, vf 0.5, ent 0.01, and sb3-contrib's policy defaults
              (LSTM 256, a second LSTM for the critic). That is more work per step than
              ours-lstm (4 frames in, two LSTMs of 256): it is what a zoo user runs.
  sb3c-lstm-matched (--recurrent-ppo matched or both) RecurrentPPO at ours-lstm's sizes:
              frame_stack 1, one LSTM of 128 shared by actor and critic (sb3-contrib's
              shared_lstm, which stops the critic's gradient at the LSTM), same PPO settings.
  sb3-ppo     stable-baselines3 PPO("CnnPolicy") with rl-zoo3's Atari settings
              (hyperparams/ppo.yml, `atari`): AtariWrapper, frame_stack 4, 8 envs, n_steps
              128, batch 256, 4 epochs, lr 2.5e-4 and clip 0.1 decaying linearly, vf 0.5,
              ent 0.01.

The RecurrentPPO rows stop at --sb3-steps or --sb3-seconds of measured training,
whichever comes first (always after a whole update); the table says each row's budget
and what it measured.

sb3 envs: `make_atari_env("PongNoFrameskip-v4", n_envs=8)` + `VecFrameStack`, ale-py's
envs registered with `gymnasium.register_envs(ale_py)` (ALE/Pong-v5 with frameskip 1 if
that id is missing), in sb3's DummyVecEnv as rl-zoo3 runs them. sb3's WarpFrame needs
opencv; where it is not installed (--sb3-envs auto), or with --sb3-envs ale, the sb3 rows
step ale-py's C++ `AtariVectorEnv` instead, with AtariWrapper's preprocessing (30 no-op
starts, FIRE at reset, 4 frames skipped with max-pooling, 84x84 grayscale, rewards
clipped, no sticky actions) and the same threads as rlcore's env (one per env, at most
one per core): an env at least as fast as sb3's own, so the sb3 rows are upper bounds
of what sb3 does with its wrappers. The table's header names the env path used.
rlcore's Pong has ALE v5's sticky actions (0.25); the NoFrameskip-v4 games have none,
which does not change the cost of a step.

Targets (the issue): on the CPU, ours-lstm at least 3x RecurrentPPO's (the zoo row) and
at least sb3 PPO CnnPolicy's steps/s; on a GPU (--device cuda), ours-lstm at least
10,000 env steps/s. With --device cuda only the rlcore rows run, once per --envs count
(rollout 128 steps, 4 minibatches, as CleanRL); their budget grows to at least
--gpu-updates updates after the warm-up. RLSERVE_MAX_JOB_MEMORY, when not set, is raised
for this process to 3/4 of the host's memory, since 256 envs x 128 steps per update
exceeds the service's default 4 GiB per job.

Everything runs with --threads torch threads (default 1), for every library. Results
go to bench/results/atari_speed.json (--quick: atari_speed_quick.json; with --device
cuda: atari_speed_cuda.json / atari_speed_cuda_quick.json), rewritten after each row.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import RESULTS, print_table, write_json
from matmul_floor import host, host_line
from train_speed import Goal

from rlcore.memory import LIMIT_ENV
from rlcore.spec import TrainSpec
from rlcore.trainer import train

RLCORE_ENV = "ALE/Pong-v5"
SB3_ENV = "PongNoFrameskip-v4"
SB3_ENV_FALLBACK = "ALE/Pong-v5"  # with frameskip=1, where the v4 ids are missing
ROLLOUT = 128  # CleanRL's and rl-zoo3's n_steps on Atari

# rl-zoo3's `atari` entries of hyperparams/ppo.yml and hyperparams/ppo_lstm.yml (the
# schedules lin_2.5e-4 and lin_0.1 are applied in `run_sb3`).
ZOO_ATARI = {
    "n_steps": ROLLOUT,
    "batch_size": 256,
    "n_epochs": 4,
    "vf_coef": 0.5,
    "ent_coef": 0.01,
}
ZOO_LR, ZOO_CLIP, ZOO_ENVS = 2.5e-4, 0.1, 8

# Targets (the issue).
MIN_VS_RECURRENT_PPO = 3.0  # ours-lstm over RecurrentPPO (zoo), CPU
MIN_VS_SB3_PPO = 1.0  # ours-lstm over sb3 PPO CnnPolicy, CPU
MIN_GPU_SPS = 10_000.0  # ours-lstm on a GPU


@dataclass
class Row:
    """One line of the table."""

    id: str
    library: str
    model: str
    frame_stack: int
    envs: int
    device: str
    budget: str
    steps_budget: int  # measured env steps asked for (after the warm-up)
    seconds_cap: float | None = None
    # Filled by the run:
    warmup_steps: int = 0
    steps: int = 0  # measured env steps
    seconds: float = 0.0  # measured seconds
    sps: float = 0.0
    total_seconds: float = 0.0  # the whole row: set-up, warm-up, training, export
    update_sps: list[float] = field(default_factory=list)  # per measured update
    vs_recurrent_ppo: float | None = None
    vs_sb3_ppo: float | None = None
    goals: list[Goal] = field(default_factory=list)


@dataclass
class Measured:
    """Env steps and seconds from the end of the warm-up to the end of the last update."""

    warmup_steps: int
    steps: int
    seconds: float
    update_sps: list[float]


class Clock:
    """Marks (env step, seconds) at the end of each update, and measures past the warm-up."""

    def __init__(self, warmup_updates: int) -> None:
        self.warmup_updates = warmup_updates
        self.marks: list[tuple[int, float]] = []

    def mark(self, step: int, seconds: float) -> None:
        self.marks.append((step, seconds))

    def measured(self) -> Measured:
        if len(self.marks) <= self.warmup_updates:
            raise RuntimeError(f"only {len(self.marks)} updates ran; need more than the warm-up's")
        points = self.marks[self.warmup_updates - 1 :]
        (start_step, start_s), (end_step, end_s) = points[0], points[-1]
        update_sps = [(b[0] - a[0]) / max(b[1] - a[1], 1e-9) for a, b in itertools.pairwise(points)]
        return Measured(start_step, end_step - start_step, end_s - start_s, update_sps)


# -- rlcore --------------------------------------------------------------------------


class _ClockSink:
    """A metrics sink that marks the trainer's clock at each update's point."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.clock.mark(step, metrics["perf/wall_time"])

    def flush(self) -> None:
        pass


def rlcore_spec(row: Row, total_steps: int, threads: int, bf16: bool) -> TrainSpec:
    """The spec of an rlcore row: the Atari defaults, with the row's model, frames and envs."""
    return TrainSpec.model_validate(
        {
            "env_id": RLCORE_ENV,
            "algo": "ppo",
            "model": row.model,
            "frame_stack": row.frame_stack,
            "num_envs": row.envs,
            "device": row.device,
            "bf16": bf16,
            "torch_threads": threads,
            "total_steps": total_steps,
            "checkpoint_interval": 0,
            "seed": 0,
        }
    )


def run_rlcore(row: Row, warmup_updates: int, threads: int, bf16: bool) -> Measured:
    """Train the row through `rlcore.trainer.train`, as the service's worker does."""
    per_update = row.envs * rlcore_spec(row, 1, threads, bf16).rollout_length
    total = (warmup_updates + math.ceil(row.steps_budget / per_update)) * per_update
    clock = Clock(warmup_updates)
    with tempfile.TemporaryDirectory() as out:
        # The checkpoint and export after the last update are outside the clock's marks.
        train(rlcore_spec(row, total, threads, bf16), Path(out), sink=_ClockSink(clock))
    return clock.measured()


# -- sb3 and sb3-contrib -------------------------------------------------------------


def have_opencv() -> bool:
    """Whether sb3's AtariWrapper can run (its WarpFrame resizes with cv2)."""
    try:
        import cv2  # noqa: F401
    except ImportError:
        return False
    return True


def sb3_env_path(choice: str) -> str:
    """`make_atari_env` or `ale`: which envs the sb3 rows step (see the module's docstring)."""
    if choice == "auto":
        return "make_atari_env" if have_opencv() else "ale"
    if choice == "make_atari_env" and not have_opencv():
        raise SystemExit(
            "--sb3-envs make_atari_env: sb3's AtariWrapper needs opencv (opencv-python-headless)"
        )
    return choice


def describe_sb3_envs(path: str) -> str:
    if path == "make_atari_env":
        return (
            f"sb3 envs: make_atari_env({_sb3_env_id()!r}, n_envs={ZOO_ENVS}) + VecFrameStack, "
            "DummyVecEnv (rl-zoo3's)"
        )
    return (
        f"sb3 envs: ale-py's C++ AtariVectorEnv('pong', {ZOO_ENVS}) with AtariWrapper's preprocessing, "
        f"{_ale_threads(ZOO_ENVS)} threads (opencv missing for sb3's AtariWrapper): "
        "an upper bound of sb3's own env speed"
    )


def _sb3_env_id() -> str:
    import ale_py
    import gymnasium as gym

    gym.register_envs(ale_py)
    return SB3_ENV if SB3_ENV in gym.registry else SB3_ENV_FALLBACK


def _ale_threads(num_envs: int) -> int:
    return min(num_envs, os.cpu_count() or 1)  # as rlcore.envs.atari.AtariVecEnv


def make_sb3_envs(path: str, frame_stack: int, terminal_on_life_loss: bool, seed: int):
    """rl-zoo3's Atari envs for sb3: 8 Pong games, frames stacked."""
    if path == "ale":
        return ale_vec_env(ZOO_ENVS, frame_stack, seed)
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    env_id = _sb3_env_id()
    envs = make_atari_env(
        env_id,
        n_envs=ZOO_ENVS,
        seed=seed,
        wrapper_kwargs={"terminal_on_life_loss": terminal_on_life_loss},
        env_kwargs={"frameskip": 1} if env_id != SB3_ENV else None,
    )
    return VecFrameStack(envs, n_stack=frame_stack) if frame_stack > 1 else envs


def _ale_vec_env_class() -> type:
    """The class of `ale_vec_env`, built on first use so that sb3 is imported only by the sb3 rows."""
    from gymnasium.vector import AutoresetMode
    from stable_baselines3.common.vec_env import VecEnv

    class _AleVecEnv(VecEnv):
        """ale-py's C++ vector env as an sb3 VecEnv, preprocessed as sb3's AtariWrapper.

        Channel-first uint8 stacks (frame_stack, 84, 84), which sb3 takes as images
        as they are. Pong has no lives, so terminal_on_life_loss has nothing to do.
        """

        def __init__(self, num_envs: int, frame_stack: int, seed: int) -> None:
            from ale_py import AtariVectorEnv

            self.ale = AtariVectorEnv(
                "pong",
                num_envs,
                num_threads=_ale_threads(num_envs),
                repeat_action_probability=0.0,  # as NoFrameskip-v4
                autoreset_mode=AutoresetMode.SAME_STEP,  # sb3's VecEnv contract
                img_height=84,
                img_width=84,
                grayscale=True,
                stack_num=frame_stack,
                frameskip=4,
                maxpool=True,
                noop_max=30,
                episodic_life=False,
                reward_clipping=True,
                use_fire_reset=True,
            )
            self.first_seed = seed
            self.actions = np.zeros(num_envs, dtype=np.int64)
            self.render_mode = None
            super().__init__(num_envs, self.ale.single_observation_space, self.ale.single_action_space)

        def reset(self) -> np.ndarray:
            seed = self._seeds[0] if self._seeds and self._seeds[0] is not None else self.first_seed
            obs, _ = self.ale.reset(seed=seed)
            self._reset_seeds()
            return obs

        def step_async(self, actions: np.ndarray) -> None:
            self.actions = np.asarray(actions, dtype=np.int64)

        def step_wait(self):
            obs, rewards, terminated, truncated, info = self.ale.step(self.actions)
            dones = terminated | truncated
            infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
            for i in np.flatnonzero(dones):
                infos[i]["terminal_observation"] = info["final_obs"][i]
                infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            return obs, rewards.astype(np.float32), dones, infos

        def close(self) -> None:
            self.ale.close()

        def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
            return [getattr(self, attr_name, None)] * len(self._get_indices(indices))

        def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
            raise NotImplementedError("AleVecEnv has no per-env attributes")

        def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list[Any]:
            raise NotImplementedError("AleVecEnv has no per-env methods")

        def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
            return [False] * len(self._get_indices(indices))

        def _get_indices(self, indices: Any) -> list[int]:
            if indices is None:
                return list(range(self.num_envs))
            return [indices] if isinstance(indices, int) else list(indices)

    return _AleVecEnv


def ale_vec_env(num_envs: int, frame_stack: int, seed: int):
    """An sb3 VecEnv of `num_envs` Pong games on ale-py's C++ vector env."""
    return _ale_vec_env_class()(num_envs, frame_stack, seed)


def _linear(start: float) -> Callable[[float], float]:
    return lambda progress_remaining: progress_remaining * start


def run_sb3(row: Row, warmup_updates: int, env_path: str, variant: str) -> Measured:
    """Train the row with sb3 (`variant` ppo) or sb3-contrib (`zoo`, `matched`)."""
    from stable_baselines3.common.callbacks import BaseCallback

    clock = Clock(warmup_updates)
    per_update = ZOO_ENVS * ROLLOUT
    total = (warmup_updates + math.ceil(row.steps_budget / per_update)) * per_update
    cap = row.seconds_cap

    class Watch(BaseCallback):
        """Marks the clock after each update (at the next rollout's start, and at the end);
        stops at the time cap, once a whole measured update is done."""

        def _on_training_start(self) -> None:
            self.started, self.updates, self.stop = time.perf_counter(), 0, False

        def _on_rollout_start(self) -> None:
            if self.updates:  # an update has just ended
                clock.mark(self.num_timesteps, time.perf_counter() - self.started)
                if cap is not None and len(clock.marks) > warmup_updates:
                    self.stop = clock.marks[-1][1] - clock.marks[warmup_updates - 1][1] >= cap
            self.updates += 1

        def _on_step(self) -> bool:
            return not self.stop  # False ends learn() before this rollout's update

        def _on_training_end(self) -> None:
            if not self.stop:  # the last update ran after the last rollout start
                clock.mark(self.num_timesteps, time.perf_counter() - self.started)

    settings: dict[str, Any] = {
        **ZOO_ATARI,
        "learning_rate": _linear(ZOO_LR),
        "clip_range": _linear(ZOO_CLIP),
        "seed": 0,
        "device": row.device,
        "verbose": 0,
    }
    if variant == "ppo":
        from stable_baselines3 import PPO

        envs = make_sb3_envs(env_path, row.frame_stack, terminal_on_life_loss=True, seed=0)
        model = PPO("CnnPolicy", envs, **settings)
    else:
        from sb3_contrib import RecurrentPPO

        envs = make_sb3_envs(env_path, row.frame_stack, terminal_on_life_loss=False, seed=0)
        kwargs = {}
        if variant == "matched":
            kwargs = {"lstm_hidden_size": 128, "shared_lstm": True, "enable_critic_lstm": False}
        model = RecurrentPPO("CnnLstmPolicy", envs, policy_kwargs=kwargs, **settings)
    try:
        model.learn(total_timesteps=total, callback=Watch())
    finally:
        envs.close()
    return clock.measured()


# -- rows ----------------------------------------------------------------------------


Runner = Callable[[Row], Measured]


def plan(args: argparse.Namespace) -> list[tuple[Row, Runner]]:
    """Every row of this run with the function that trains it."""
    rows: list[tuple[Row, Runner]] = []
    ours = [("ours-lstm", "lstm", 1), ("ours-mlp", "mlp", 4)]
    warm = f"after {args.warmup_updates} warm-up update(s)"

    def rlcore_runner(row: Row) -> Measured:
        return run_rlcore(row, args.warmup_updates, args.threads, args.bf16)

    if args.device == "cuda":
        for envs in args.envs:
            steps = max(args.steps, args.gpu_updates * envs * ROLLOUT)
            for name, model, frames in ours:
                row = Row(
                    f"{name}-{envs}",
                    "rlcore",
                    model,
                    frames,
                    envs,
                    "cuda",
                    f"{_k(steps)} steps {warm}",
                    steps,
                )
                rows.append((row, rlcore_runner))
        return rows

    for name, model, frames in ours:
        row = Row(
            name, "rlcore", model, frames, args.envs[0], "cpu", f"{_k(args.steps)} steps {warm}", args.steps
        )
        rows.append((row, rlcore_runner))
    sb3_budget = f"{_k(args.sb3_steps)} steps or {args.sb3_seconds:.0f} s {warm}"
    variants = {"zoo": ["zoo"], "matched": ["matched"], "both": ["zoo", "matched"]}[args.recurrent_ppo]
    for variant in variants:
        row = Row(
            "sb3c-lstm" if variant == "zoo" else "sb3c-lstm-matched",
            "sb3-contrib",
            "lstm" if variant == "zoo" else "lstm 128 shared",
            4 if variant == "zoo" else 1,
            ZOO_ENVS,
            "cpu",
            sb3_budget,
            args.sb3_steps,
            args.sb3_seconds,
        )
        rows.append((row, lambda r, v=variant: run_sb3(r, args.warmup_updates, args.env_path, v)))
    sb3_ppo_budget = f"{_k(args.sb3_ppo_steps)} steps or {args.sb3_seconds:.0f} s {warm}"
    row = Row(
        "sb3-ppo",
        "sb3",
        "mlp (CnnPolicy)",
        4,
        ZOO_ENVS,
        "cpu",
        sb3_ppo_budget,
        args.sb3_ppo_steps,
        args.sb3_seconds,
    )
    rows.append((row, lambda r: run_sb3(r, args.warmup_updates, args.env_path, "ppo")))
    return rows


def _k(n: int) -> str:
    return f"{n:,}"


def summarise(rows: list[Row]) -> None:
    """Fill each row's ratios to the sb3 rows, and its targets."""
    reference = {r.id: r.sps for r in rows if r.sps and r.id in ("sb3c-lstm", "sb3-ppo")}
    for r in rows:
        if not r.sps:
            continue
        if "sb3c-lstm" in reference:
            r.vs_recurrent_ppo = r.sps / reference["sb3c-lstm"]
        if "sb3-ppo" in reference:
            r.vs_sb3_ppo = r.sps / reference["sb3-ppo"]
        r.goals = goals(r)


def goals(r: Row) -> list[Goal]:
    """The issue's targets that apply to this row, checked."""
    if r.library != "rlcore" or r.model != "lstm":
        return []
    if r.device == "cuda":
        return [Goal(f">= {MIN_GPU_SPS:,.0f} steps/s", r.sps >= MIN_GPU_SPS)]
    found = []
    for text, ratio, least, missing in (
        (
            f">= {MIN_VS_RECURRENT_PPO:.0f}x RecurrentPPO",
            r.vs_recurrent_ppo,
            MIN_VS_RECURRENT_PPO,
            "sb3c-lstm",
        ),
        (">= sb3 PPO CnnPolicy", r.vs_sb3_ppo, MIN_VS_SB3_PPO, "sb3-ppo"),
    ):
        met = None if ratio is None else ratio >= least
        found.append(Goal(text, met, "" if ratio is not None else f"no {missing} row"))
    return found


def _verdict(goal: Goal) -> str:
    if goal.met is None:
        return f"unchecked ({goal.why})"
    return "met" if goal.met else "NOT met"


def print_rows(rows: list[Row]) -> None:
    head = [
        "row",
        "library",
        "model",
        "frames",
        "envs",
        "device",
        "budget",
        "measured",
        "env steps/s",
        "x RecurrentPPO",
        "x sb3 PPO CnnPolicy",
        "targets",
    ]
    lines = []
    for r in rows:
        if not r.sps:
            continue
        lines.append(
            [
                r.id,
                r.library,
                r.model,
                str(r.frame_stack),
                str(r.envs),
                r.device,
                r.budget,
                f"{r.steps:,} steps in {r.seconds:.1f} s",
                f"{r.sps:,.0f}",
                "-" if r.vs_recurrent_ppo is None else f"{r.vs_recurrent_ppo:.2f}x",
                "-" if r.vs_sb3_ppo is None else f"{r.vs_sb3_ppo:.2f}x",
                "; ".join(f"{g.text}: {_verdict(g)}" for g in r.goals) or "-",
            ]
        )
    print_table(head, lines)


# -- main ----------------------------------------------------------------------------


def check_cuda() -> str | None:
    """Why `--device cuda` cannot run here, or None when it can."""
    if torch.version.cuda is None:
        return f"--device cuda: this torch ({torch.__version__}) is a CPU-only build; install a CUDA build"
    if not torch.cuda.is_available():
        return (
            f"--device cuda: torch {torch.__version__} (CUDA {torch.version.cuda}) sees no CUDA device "
            "(check the driver, nvidia-smi and CUDA_VISIBLE_DEVICES)"
        )
    return None


def raise_memory_limit() -> str | None:
    """Lift the service's per-job memory limit to 3/4 of this host's memory, unless it is set."""
    if os.environ.get(LIMIT_ENV, "").strip():
        return None
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
    os.environ[LIMIT_ENV] = str(total * 3 // 4)
    return f"{LIMIT_ENV} set to {total * 3 // 4 / 2**30:.0f} GiB for this run (3/4 of the host's memory)"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="cuda: the rlcore rows only")
    parser.add_argument(
        "--envs",
        default=None,
        help="comma-separated env counts for the rlcore rows (cuda default 8,64,256; cpu 8)",
    )
    parser.add_argument("--steps", type=int, default=8_192, help="measured env steps per rlcore row")
    parser.add_argument("--sb3-steps", type=int, default=8_192, help="RecurrentPPO rows: measured step cap")
    parser.add_argument("--sb3-ppo-steps", type=int, default=8_192, help="sb3 PPO row: measured step cap")
    parser.add_argument("--sb3-seconds", type=float, default=75.0, help="sb3 rows: measured time cap")
    parser.add_argument("--warmup-updates", type=int, default=1, help="updates before the clock starts")
    parser.add_argument(
        "--gpu-updates", type=int, default=4, help="cuda: at least this many measured updates"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads, for every library")
    parser.add_argument("--bf16", action="store_true", help="cuda: rlcore's encoder in bf16 autocast")
    parser.add_argument(
        "--recurrent-ppo",
        choices=("zoo", "matched", "both"),
        default="zoo",
        help="RecurrentPPO rows: rl-zoo3's settings, ours-lstm's sizes, or both",
    )
    parser.add_argument(
        "--sb3-envs",
        choices=("auto", "make_atari_env", "ale"),
        default="auto",
        help="sb3 rows' envs: sb3's wrappers (need opencv), ale-py's vector env, or auto",
    )
    parser.add_argument("--only", action="append", help="run rows whose id contains this (repeatable)")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 1,024 measured steps per row, sb3 capped at 10 s"
    )
    args = parser.parse_args()
    if args.device == "cuda" and (why := check_cuda()):
        parser.exit(2, f"{why}\n")
    if args.bf16 and args.device != "cuda":
        parser.error("--bf16 applies to --device cuda only (bf16 is slower on the CPU)")
    if args.warmup_updates < 1 or args.threads < 1:
        parser.error("--warmup-updates and --threads must be at least 1")
    try:
        args.envs = [int(n) for n in (args.envs or ("8,64,256" if args.device == "cuda" else "8")).split(",")]
    except ValueError:
        parser.error(f"--envs: comma-separated integers, got {args.envs!r}")
    if args.device == "cpu" and len(args.envs) > 1:
        parser.error("--envs with several counts is for --device cuda (the CPU rows compare at 8 envs)")
    if args.quick:
        args.steps = args.sb3_steps = args.sb3_ppo_steps = 1024
        args.sb3_seconds = min(args.sb3_seconds, 10.0)
        args.gpu_updates = 1
    stem = "atari_speed" + ("_cuda" if args.device == "cuda" else "") + ("_quick" if args.quick else "")
    results = RESULTS / f"{stem}.json"

    torch.set_num_threads(args.threads)
    args.env_path = sb3_env_path(args.sb3_envs) if args.device == "cpu" else None
    planned = [(r, run) for r, run in plan(args) if not args.only or any(o in r.id for o in args.only)]
    rows = [r for r, _ in planned]
    info = host()
    if args.device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
    notes = [host_line(info) + (f"; GPU {info['gpu']}" if "gpu" in info else "")]
    if args.env_path and any(r.library != "rlcore" for r in rows):
        notes.append(describe_sb3_envs(args.env_path))
    if args.device == "cuda" and (note := raise_memory_limit()):
        notes.append(note)
    print("\n".join(notes), flush=True)

    def save() -> None:
        summarise(rows)
        report = {
            "quick": args.quick,
            "host": info,
            "notes": notes,
            "sb3_envs": args.env_path,
            "threads": args.threads,
            "bf16": args.bf16,
            "targets": {
                "min_vs_recurrent_ppo": MIN_VS_RECURRENT_PPO,
                "min_vs_sb3_ppo": MIN_VS_SB3_PPO,
                "min_gpu_sps": MIN_GPU_SPS,
            },
            "rows": [asdict(r) for r in rows],
        }
        write_json(results, report)

    for row, run in planned:
        print(f"{row.id} ...", end=" ", flush=True)
        started = time.perf_counter()
        measured = run(row)
        row.total_seconds = time.perf_counter() - started
        row.warmup_steps, row.steps, row.seconds = measured.warmup_steps, measured.steps, measured.seconds
        row.sps, row.update_sps = measured.steps / max(measured.seconds, 1e-9), measured.update_sps
        print(
            f"{row.sps:,.0f} env steps/s ({row.steps:,} steps in {row.seconds:.1f} s; "
            f"row {row.total_seconds:.0f} s)",
            flush=True,
        )
        save()  # partial results survive an interrupted run

    print()
    print("\n".join(notes))
    print_rows(rows)
    print(f"\nwrote {results}")


if __name__ == "__main__":
    main()
