"""Training speed: rlcore's recurrent PPO against sb3-contrib's RecurrentPPO, same process.

    python bench/train_speed.py                      # everything (< 20 minutes on 2 cores)
    python bench/train_speed.py --only b-            # setting (b) rows only
    python bench/train_speed.py --only reinforce --only a-ours-gru-v1 --steps 50000

Needs the `bench` extra (`pip install -c constraints.txt -e '.[bench]'`) for the sb3 rows.

For each row: training env steps/s (rollout and update together, over the whole run),
wall seconds until the mean return of the last 100 episodes first reaches the target
(475 on CartPole-v1 and on masked CartPole, 195 on CartPole-v0), and that mean at the
end. Settings:
  (a) matched: rl-zoo3's CartPoleNoVel hyperparameters with sb3-contrib's default LSTM
      size for both libraries: 8 envs, n_steps 32, batch 256 (one minibatch), 20 epochs,
      gamma 0.98, GAE lambda 0.8, lr 1e-3 and clip 0.2 decaying linearly, entropy 0,
      hidden 256; rlcore with `encoder: none`, so that in both the observation goes
      straight into the recurrent layer.
  (b) each library's own best: rlcore's spec defaults; RecurrentPPO with rl-zoo3's
      CartPoleNoVel-v1 hyperparameters (LSTM 64, separate critic LSTM).
RecurrentPPO trains at a few hundred steps/s, so its rows stop at --sb3-steps or
--sb3-seconds, whichever comes first; the table says which budget each row had.
Everything runs on the CPU with one torch thread (--threads to change it, for both).
Results go to bench/results/; the "x RecurrentPPO" column divides steps/s by
RecurrentPPO's in the same setting and env.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from rlcore.spec import TrainSpec
from rlcore.trainer import train

RESULTS = Path(__file__).parent / "results" / "train_speed.json"
TARGET = {"CartPole-v0": 195.0, "CartPole-v1": 475.0, "CartPoleMasked-v1": 475.0}
SHORT_ENV = {"CartPole-v0": "CartPole-v0", "CartPole-v1": "CartPole-v1", "CartPoleMasked-v1": "masked"}

# Setting (a), in rlcore's spec terms: batch 256 of 8 x 32 steps is one minibatch.
MATCHED = {
    "num_envs": 8,
    "rollout_length": 32,
    "minibatches": 1,
    "epochs": 20,
    "gamma": 0.98,
    "gae_lambda": 0.8,
    "learning_rate": 1e-3,
    "anneal_lr": True,  # rlcore decays the clip range with the learning rate
    "clip_range": 0.2,
    "ent_coef": 0.0,
    "vf_coef": 0.5,
    "max_grad_norm": 0.5,
    "normalize_advantages": True,
    "hidden_size": 256,
    "encoder": "none",  # as RecurrentPPO: the observation goes straight into the recurrent layer
}


@dataclass
class Row:
    """One line of the table."""

    id: str
    setting: str
    library: str
    model: str
    env: str
    budget: str
    steps: int = 0
    wall_s: float = 0.0
    sps: float = 0.0
    target: float = 0.0
    seconds_to_target: float | None = None
    steps_to_target: int | None = None
    final_return: float | None = None
    vs_reference: float | None = None  # steps/s over RecurrentPPO's, same setting and env


class Last100:
    """Mean return of the last 100 episodes, and when it first reached the target."""

    def __init__(self, target: float) -> None:
        self.returns: deque[float] = deque(maxlen=100)
        self.target = target
        self.hit: tuple[int, float] | None = None

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.returns)) if self.returns else None

    def add(self, returns: list[float], step: int, seconds: float) -> None:
        self.returns.extend(returns)
        if self.hit is None and len(self.returns) == 100 and self.mean >= self.target:
            self.hit = (step, seconds)


# -- rlcore ------------------------------------------------------------------------


class _Sink:
    """Feeds rlcore's per-update points to a Last100.

    A point holds the mean and count of the episodes that ended in that update, so
    each episode enters the window at its update's mean: the window's mean is exact
    whenever it holds whole updates, and off by at most one update's spread otherwise.
    """

    def __init__(self, last100: Last100) -> None:
        self.last100 = last100

    def log(self, step: int, metrics: dict[str, float]) -> None:
        count = int(metrics.get("charts/episodes", 0))
        returns = [metrics["charts/episodic_return"]] * count if count else []
        self.last100.add(returns, step, metrics["perf/wall_time"])

    def flush(self) -> None:
        pass


def run_rlcore(row: Row, steps: int, **spec: object) -> Row:
    spec_obj = TrainSpec.model_validate(
        {
            "device": "cpu",
            "checkpoint_interval": 0,
            "env_id": row.env,
            "model": row.model,
            "total_steps": steps,
            "seed": 0,
            "torch_threads": torch.get_num_threads(),
            **spec,
        }
    )
    last100 = Last100(row.target)
    with tempfile.TemporaryDirectory() as out:
        # result.wall_time is the training time; the export after it is not counted.
        result = train(spec_obj, Path(out), sink=_Sink(last100))
    return _finish(row, result.steps, result.wall_time, last100)


# -- sb3-contrib ---------------------------------------------------------------------


def _sb3_envs(env_id: str, n: int):
    import gymnasium as gym
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv

    class VelocitiesHidden(gym.ObservationWrapper):
        """Cart position and pole angle only (obs[0], obs[2])."""

        def __init__(self, env: gym.Env) -> None:
            super().__init__(env)
            low, high = env.observation_space.low[[0, 2]], env.observation_space.high[[0, 2]]
            self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)

        def observation(self, obs: np.ndarray) -> np.ndarray:
            return obs[[0, 2]]

    if env_id == "CartPoleMasked-v1":
        return make_vec_env(
            lambda: VelocitiesHidden(gym.make("CartPole-v1")), n, seed=0, vec_env_cls=DummyVecEnv
        )
    return make_vec_env(env_id, n, seed=0, vec_env_cls=DummyVecEnv)


def _linear(start: float) -> Callable[[float], float]:
    return lambda progress_remaining: progress_remaining * start


def run_sb3(row: Row, steps: int, seconds: float, hidden: int, zoo_policy: bool) -> Row:
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.callbacks import BaseCallback

    last100 = Last100(row.target)

    class Watch(BaseCallback):
        """Tracks the last-100 mean and stops at the time limit."""

        def _on_training_start(self) -> None:
            self.started = time.perf_counter()

        def _on_step(self) -> bool:
            elapsed = time.perf_counter() - self.started
            infos = [i["episode"]["r"] for i in self.locals["infos"] if "episode" in i]
            last100.add([float(r) for r in infos], self.num_timesteps, elapsed)
            return elapsed < seconds

    policy_kwargs: dict = {"lstm_hidden_size": hidden}
    if zoo_policy:
        policy_kwargs = {
            "ortho_init": False,
            "activation_fn": torch.nn.ReLU,
            "lstm_hidden_size": hidden,
            "enable_critic_lstm": True,
            "net_arch": {"pi": [64], "vf": [64]},
        }
    model = RecurrentPPO(
        "MlpLstmPolicy",
        _sb3_envs(row.env, 8),
        n_steps=32,
        batch_size=256,
        n_epochs=20,
        gamma=0.98,
        gae_lambda=0.8,
        ent_coef=0.0,
        learning_rate=_linear(1e-3),
        clip_range=_linear(0.2),
        policy_kwargs=policy_kwargs,
        seed=0,
        device="cpu",
        verbose=0,
    )
    watch = Watch()
    started = time.perf_counter()
    model.learn(total_timesteps=steps, callback=watch)
    wall = time.perf_counter() - started
    return _finish(row, model.num_timesteps, wall, last100)


# -- rows and table ------------------------------------------------------------------


def _finish(row: Row, steps: int, wall: float, last100: Last100) -> Row:
    row.steps, row.wall_s = steps, wall
    row.sps = steps / max(wall, 1e-9)
    row.final_return = last100.mean
    if last100.hit is not None:
        row.steps_to_target, row.seconds_to_target = last100.hit
    return row


def plan(args: argparse.Namespace) -> list[tuple[Row, Callable[[Row], Row]]]:
    """Every row with the function that runs it."""

    def budget(default: int) -> int:
        return args.steps or default

    sb3_steps = args.steps or args.sb3_steps
    sb3_budget = f"{sb3_steps // 1000}k steps or {args.sb3_seconds:.0f} s"
    rows: list[tuple[Row, Callable[[Row], Row]]] = []
    for env in ("CartPole-v1", "CartPoleMasked-v1"):
        short = "v1" if env == "CartPole-v1" else "masked"
        for model in ("gru", "lstm"):
            steps = budget(100_000)
            rows.append(
                (
                    Row(f"a-ours-{model}-{short}", "a", "rlcore", model, env, f"{steps // 1000}k steps"),
                    lambda r, s=steps: run_rlcore(r, s, algo="ppo", **MATCHED),
                )
            )
        rows.append(
            (
                Row(f"a-sb3-lstm-{short}", "a", "sb3-contrib", "lstm", env, sb3_budget),
                lambda r: run_sb3(r, sb3_steps, args.sb3_seconds, hidden=256, zoo_policy=False),
            )
        )
        for model in ("gru", "lstm"):
            steps = budget(200_000 if env == "CartPole-v1" else 500_000)
            rows.append(
                (
                    Row(f"b-ours-{model}-{short}", "b", "rlcore", model, env, f"{steps // 1000}k steps"),
                    lambda r, s=steps: run_rlcore(r, s, algo="ppo"),
                )
            )
        rows.append(
            (
                Row(f"b-sb3-lstm-{short}", "b", "sb3-contrib", "lstm", env, sb3_budget),
                lambda r: run_sb3(r, sb3_steps, args.sb3_seconds, hidden=64, zoo_policy=True),
            )
        )
    steps = budget(200_000)
    rows.append(
        (
            Row(
                "reinforce-ours-gru-v0",
                "b",
                "rlcore reinforce",
                "gru",
                "CartPole-v0",
                f"{steps // 1000}k steps",
            ),
            lambda r, s=steps: run_rlcore(r, s, algo="reinforce"),
        )
    )
    for row, _ in rows:
        row.target = TARGET[row.env]
    return [(row, fn) for row, fn in rows if not args.only or any(o in row.id for o in args.only)]


def print_table(rows: list[Row]) -> None:
    head = [
        "setting",
        "library",
        "model",
        "env",
        "budget",
        "steps/s",
        "x RecurrentPPO",
        "s to target",
        "steps to target",
        "final (last 100)",
    ]
    lines = [head]
    for r in rows:
        reached = r.seconds_to_target is not None
        lines.append(
            [
                r.setting,
                r.library,
                r.model,
                f"{SHORT_ENV[r.env]} ({r.target:.0f})",
                r.budget,
                f"{r.sps:,.0f}",
                "-" if r.vs_reference is None else f"{r.vs_reference:.1f}x",
                f"{r.seconds_to_target:.1f}" if reached else f"not reached in {r.wall_s:.0f} s",
                f"{r.steps_to_target:,}" if reached else f"not in {r.steps:,}",
                "-" if r.final_return is None else f"{r.final_return:.1f}",
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    for i, line in enumerate(lines):
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", action="append", help="run rows whose id contains this (repeatable)")
    parser.add_argument("--steps", type=int, help="env-step budget for every row (quick runs)")
    parser.add_argument("--sb3-steps", type=int, default=100_000, help="RecurrentPPO step cap")
    parser.add_argument("--sb3-seconds", type=float, default=150.0, help="RecurrentPPO time cap")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, for both libraries")
    parser.add_argument("--list", action="store_true", help="print the row ids and exit")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    rows = plan(args)
    if args.list:
        print("\n".join(row.id for row, _ in rows))
        return
    done: list[Row] = []
    for row, run in rows:
        print(f"running {row.id} ...", flush=True)
        done.append(run(row))
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps([asdict(r) for r in done], indent=2))  # partial results survive
    set_ratios(done)
    RESULTS.write_text(json.dumps([asdict(r) for r in done], indent=2))
    print_table(done)
    print(f"\nwrote {RESULTS}")


def set_ratios(rows: list[Row]) -> None:
    """Each rlcore row's steps/s as a multiple of RecurrentPPO's in the same setting and env."""
    reference = {(r.setting, r.env): r.sps for r in rows if r.library == "sb3-contrib" and r.sps}
    for r in rows:
        if r.library == "rlcore" and (r.setting, r.env) in reference:
            r.vs_reference = r.sps / reference[(r.setting, r.env)]


if __name__ == "__main__":
    main()
