"""Training speed: rlcore's recurrent PPO against sb3-contrib's RecurrentPPO, same process.

    python bench/train_speed.py                      # everything: 80 minutes on a 2-core AVX-512 host
    python bench/train_speed.py --quick              # every row, tiny budgets: a ~2-minute smoke run
    python bench/train_speed.py --only b-            # setting (b) rows only
    python bench/train_speed.py --only reinforce --seeds 3

Needs the `bench` extra (`pip install -c constraints.txt -e '.[bench]'`) for the sb3 rows.

For each row, over its seeds (--seeds; by default 3 for setting (a), 5 for (b) and the
REINFORCE rows): training env steps/s (rollout and update together, over the whole run),
wall seconds until the mean return of the last 100 episodes first reaches the target
(475 on CartPole-v1 and on masked CartPole, 195 on CartPole-v0), and that mean at the
end. Settings:
  (a) matched: rl-zoo3's CartPoleNoVel hyperparameters with sb3-contrib's default LSTM
      size for both libraries: 8 envs, n_steps 32, batch 256 (one minibatch), 20 epochs,
      gamma 0.98, GAE lambda 0.8, lr 1e-3 and clip 0.2 decaying linearly, entropy 0,
      hidden 256; rlcore with `encoder: none`, so that in both the observation goes
      straight into the recurrent layer.
  (b) each library's own best: rlcore's spec defaults (rlcore/spec.py ALGORITHM_DEFAULTS,
      PPO and REINFORCE); RecurrentPPO with rl-zoo3's CartPoleNoVel-v1 hyperparameters
      (LSTM 64, separate critic LSTM).
RecurrentPPO trains at a few hundred steps/s, so its rows stop at --sb3-steps or
--sb3-seconds, whichever comes first; the table says which budget each row had.
Everything runs on the CPU with one torch thread (--threads to change it, for both).

The run starts by naming the host and measuring the matmul floor of setting (a) on it
(bench/matmul_floor.py): the time of one update's matmuls alone, as env steps/s. Each
(a) row's "of floor" is its steps/s over that floor. Results go to
bench/results/train_speed.json (--quick: train_speed_quick.json), per seed.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from common import RESULTS, Last100, fmt_seconds, print_table, train_watched, write_json
from matmul_floor import Floor, Matmul, host, host_line, ppo_floor

from rlcore.envs import make_vec_env
from rlcore.spec import TrainSpec

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

# Targets (issue 9). Speed, setting (a), rlcore gru and lstm rows: steps/s at least
# MIN_VS_REFERENCE x RecurrentPPO's and at least 1/MAX_FLOOR_GAP of the matmul floor.
MIN_VS_REFERENCE = 5.0
MAX_FLOOR_GAP = 1.5
# Time to target: the median over at least TIME_GOAL_SEEDS seeds under this many seconds.
TIME_GOALS = {"b-ours-gru-v1": 15.0, "b-ours-gru-masked": 30.0, "reinforce-ours-gru-v0": 7.0}
TIME_GOAL_SEEDS = 5


@dataclass
class SeedRun:
    """One training run of a row."""

    seed: int
    steps: int
    wall_s: float
    sps: float
    seconds_to_target: float | None
    steps_to_target: int | None
    final_return: float | None


@dataclass
class Goal:
    """A target a row must meet; met is None when the run could not check it."""

    text: str
    met: bool | None
    why: str = ""


@dataclass
class Row:
    """One line of the table, with every seed's run."""

    id: str
    setting: str
    library: str
    model: str
    env: str
    budget: str
    seeds: int
    target: float = 0.0
    runs: list[SeedRun] = field(default_factory=list)
    # Over the runs: medians, and the seeds that reached the target.
    sps: float = 0.0
    seconds_to_target: float | None = None  # None: the median seed did not reach it
    steps_to_target: float | None = None
    reached: int = 0
    final_return: float | None = None
    vs_reference: float | None = None  # steps/s over RecurrentPPO's, same setting and env
    floor_sps: float | None = None  # setting (a): the matmul floor, as env steps/s
    of_floor: float | None = None  # steps/s over floor_sps
    goals: list[Goal] = field(default_factory=list)


def run_rlcore(row: Row, seed: int, steps: int, **spec: object) -> SeedRun:
    """Train one seed through `rlcore.trainer.train`, as the service's worker does."""
    spec_obj = TrainSpec.model_validate(
        {
            "device": "cpu",
            "checkpoint_interval": 0,
            "env_id": row.env,
            "model": row.model,
            "total_steps": steps,
            "seed": seed,
            "torch_threads": torch.get_num_threads(),
            **spec,
        }
    )
    # result.wall_time is the training time; the export after it is not counted.
    result, last100 = train_watched(spec_obj, row.target)
    return _seed_run(seed, result.steps, result.wall_time, last100)


# -- sb3-contrib ---------------------------------------------------------------------


def _sb3_envs(env_id: str, n: int, seed: int):
    import gymnasium as gym
    from stable_baselines3.common.env_util import make_vec_env as sb3_vec_env
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
        return sb3_vec_env(
            lambda: VelocitiesHidden(gym.make("CartPole-v1")), n, seed=seed, vec_env_cls=DummyVecEnv
        )
    return sb3_vec_env(env_id, n, seed=seed, vec_env_cls=DummyVecEnv)


def _linear(start: float) -> Callable[[float], float]:
    return lambda progress_remaining: progress_remaining * start


def run_sb3(row: Row, seed: int, steps: int, seconds: float, hidden: int, zoo_policy: bool) -> SeedRun:
    """Train one seed of RecurrentPPO, stopping at `steps` or `seconds`."""
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
        _sb3_envs(row.env, 8, seed),
        n_steps=32,
        batch_size=256,
        n_epochs=20,
        gamma=0.98,
        gae_lambda=0.8,
        ent_coef=0.0,
        learning_rate=_linear(1e-3),
        clip_range=_linear(0.2),
        policy_kwargs=policy_kwargs,
        seed=seed,
        device="cpu",
        verbose=0,
    )
    started = time.perf_counter()
    model.learn(total_timesteps=steps, callback=Watch())
    wall = time.perf_counter() - started
    return _seed_run(seed, model.num_timesteps, wall, last100)


# -- rows ----------------------------------------------------------------------------


def _seed_run(seed: int, steps: int, wall: float, last100: Last100) -> SeedRun:
    hit = last100.hit or (None, None)
    return SeedRun(seed, steps, wall, steps / max(wall, 1e-9), hit[1], hit[0], last100.mean)


Runner = Callable[[Row, int], SeedRun]


def plan(args: argparse.Namespace) -> list[tuple[Row, Runner]]:
    """Every row with the function that runs one seed of it."""

    def budget(default: int) -> int:
        return args.steps or default

    def seeds(default: int) -> int:
        return args.seeds or default

    sb3_steps = args.steps or args.sb3_steps
    sb3_budget = f"{_k(sb3_steps)} steps or {args.sb3_seconds:.0f} s"
    rows: list[tuple[Row, Runner]] = []
    for env in ("CartPole-v1", "CartPoleMasked-v1"):
        short = "v1" if env == "CartPole-v1" else "masked"
        for model in ("gru", "lstm"):
            steps = budget(100_000)
            rows.append(
                (
                    Row(f"a-ours-{model}-{short}", "a", "rlcore", model, env, f"{_k(steps)} steps", seeds(3)),
                    lambda r, seed, s=steps: run_rlcore(r, seed, s, algo="ppo", **MATCHED),
                )
            )
        rows.append(
            (
                Row(f"a-sb3-lstm-{short}", "a", "sb3-contrib", "lstm", env, sb3_budget, seeds(3)),
                lambda r, seed: run_sb3(r, seed, sb3_steps, args.sb3_seconds, hidden=256, zoo_policy=False),
            )
        )
        for model in ("gru", "lstm"):
            steps = budget(200_000 if env == "CartPole-v1" else 500_000)
            rows.append(
                (
                    Row(f"b-ours-{model}-{short}", "b", "rlcore", model, env, f"{_k(steps)} steps", seeds(5)),
                    lambda r, seed, s=steps: run_rlcore(r, seed, s, algo="ppo"),
                )
            )
        rows.append(
            (
                Row(f"b-sb3-lstm-{short}", "b", "sb3-contrib", "lstm", env, sb3_budget, seeds(5)),
                lambda r, seed: run_sb3(r, seed, sb3_steps, args.sb3_seconds, hidden=64, zoo_policy=True),
            )
        )
    steps = budget(200_000)
    for model in ("mlp", "gru_cell", "gru"):
        rows.append(
            (
                Row(
                    f"reinforce-ours-{model}-v0",
                    "b",
                    "rlcore reinforce",
                    model,
                    "CartPole-v0",
                    f"{_k(steps)} steps",
                    seeds(5),
                ),
                lambda r, seed, s=steps: run_rlcore(r, seed, s, algo="reinforce"),
            )
        )
    for row, _ in rows:
        row.target = TARGET[row.env]
    return [(row, fn) for row, fn in rows if not args.only or any(o in row.id for o in args.only)]


def _k(steps: int) -> str:
    return f"{steps // 1000}k" if steps % 1000 == 0 else f"{steps:,}"


# -- the floor of setting (a) --------------------------------------------------------


def measure_floors(rows: list[Row]) -> dict[tuple[str, str], Floor]:
    """The matmul floor of setting (a) for each (model, env) an (a) rlcore row trains."""
    times: dict[Matmul, float] = {}
    floors = {}
    for row in rows:
        if row.setting == "a" and row.library == "rlcore" and (row.model, row.env) not in floors:
            envs = make_vec_env(row.env, 1, 0)
            features, actions = int(np.prod(envs.single_observation_space.shape)), envs.single_action_space.n
            envs.close()
            floors[(row.model, row.env)] = ppo_floor(
                row.model,
                num_envs=MATCHED["num_envs"],
                rollout_length=MATCHED["rollout_length"],
                minibatches=MATCHED["minibatches"],
                epochs=MATCHED["epochs"],
                hidden_size=MATCHED["hidden_size"],
                features=features,
                actions=int(actions),
                times=times,
            )
    return floors


# -- summaries, targets, table -------------------------------------------------------


def summarise(rows: list[Row], floors: dict[tuple[str, str], Floor]) -> None:
    """Fill each row's medians, ratios and goals from its runs so far."""
    for r in rows:
        if not r.runs:
            continue
        r.sps = statistics.median(run.sps for run in r.runs)
        # A seed that never reached the target counts as infinitely slow.
        seconds = [math.inf if run.seconds_to_target is None else run.seconds_to_target for run in r.runs]
        steps = [math.inf if run.steps_to_target is None else run.steps_to_target for run in r.runs]
        r.reached = sum(math.isfinite(x) for x in seconds)
        r.seconds_to_target = _finite(statistics.median(seconds))
        r.steps_to_target = _finite(statistics.median(steps))
        finals = [run.final_return for run in r.runs if run.final_return is not None]
        r.final_return = statistics.median(finals) if finals else None
        floor = floors.get((r.model, r.env)) if r.setting == "a" and r.library == "rlcore" else None
        if floor is not None:
            r.floor_sps, r.of_floor = floor.steps_per_s, r.sps / floor.steps_per_s
    reference = {(r.setting, r.env): r.sps for r in rows if r.library == "sb3-contrib" and r.sps}
    for r in rows:
        if r.library == "rlcore" and (r.setting, r.env) in reference:
            r.vs_reference = r.sps / reference[(r.setting, r.env)]
        r.goals = goals(r)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def goals(r: Row) -> list[Goal]:
    """The issue's targets that apply to this row, checked."""
    found = []
    if r.setting == "a" and r.library == "rlcore":
        text = f">= {MIN_VS_REFERENCE:.0f}x RecurrentPPO"
        if r.vs_reference is None:
            found.append(Goal(text, None, "no RecurrentPPO row"))
        else:
            found.append(Goal(text, r.vs_reference >= MIN_VS_REFERENCE))
        text = f">= floor/{MAX_FLOOR_GAP}"
        if r.of_floor is None:
            found.append(Goal(text, None, "no floor"))
        else:
            found.append(Goal(text, r.of_floor >= 1 / MAX_FLOOR_GAP))
    if r.id in TIME_GOALS:
        limit = TIME_GOALS[r.id]
        text = f"median < {limit:.0f} s"
        if len(r.runs) < TIME_GOAL_SEEDS:
            found.append(Goal(text, None, f"{len(r.runs)}/{TIME_GOAL_SEEDS} seeds"))
        else:
            found.append(Goal(text, r.seconds_to_target is not None and r.seconds_to_target < limit))
    return found


def _verdict(goal: Goal) -> str:
    if goal.met is None:
        return f"unchecked ({goal.why})"
    return "met" if goal.met else "NOT met"


def _to_target_cell(r: Row) -> str:
    """`median (min-max), k/n reached`: min-max over the seeds that reached the target."""
    n = len(r.runs)
    if r.reached == 0:
        return f"not in {fmt_seconds(statistics.median(run.wall_s for run in r.runs))} s, 0/{n} reached"
    hits = [run.seconds_to_target for run in r.runs if run.seconds_to_target is not None]
    median = "not reached" if r.seconds_to_target is None else f"{r.seconds_to_target:.1f}"
    return f"{median} ({min(hits):.1f}-{max(hits):.1f}), {r.reached}/{n} reached"


def print_rows(rows: list[Row]) -> None:
    head = [
        "setting",
        "library",
        "model",
        "env (target)",
        "budget",
        "steps/s",
        "x RecurrentPPO",
        "of floor",
        "s to target: median (min-max), reached",
        "steps to target",
        "final (last 100)",
        "targets",
    ]
    lines = []
    for r in rows:
        if not r.runs:
            continue
        finals = [run.final_return for run in r.runs if run.final_return is not None]
        lines.append(
            [
                r.setting,
                r.library,
                r.model,
                f"{SHORT_ENV[r.env]} ({r.target:.0f})",
                r.budget,
                f"{r.sps:,.0f}",
                "-" if r.vs_reference is None else f"{r.vs_reference:.1f}x",
                "-" if r.of_floor is None else f"{r.of_floor:.2f}",
                _to_target_cell(r),
                "-" if r.steps_to_target is None else f"{r.steps_to_target:,.0f}",
                "-" if not finals else f"{r.final_return:.0f} ({min(finals):.0f}-{max(finals):.0f})",
                "; ".join(f"{g.text}: {_verdict(g)}" for g in r.goals) or "-",
            ]
        )
    print_table(head, lines)


def print_floors(floors: dict[tuple[str, str], Floor]) -> None:
    for (model, env), floor in floors.items():
        parts = ", ".join(f"{what} {us / 1e3:.2f}" for what, us in floor.parts_us.items())
        print(
            f"floor (a) {model} {floor.hidden} on {SHORT_ENV[env]}: {floor.update_ms:.1f} ms of "
            f"matmuls per update ({floor.epochs} epochs x {floor.minibatches} minibatch of {floor.envs} x "
            f"{floor.steps} steps) = {floor.steps_per_s:,.0f} steps/s; per minibatch, ms: {parts}"
        )


# -- main ----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", action="append", help="run rows whose id contains this (repeatable)")
    parser.add_argument("--steps", type=int, help="env-step budget for every row (quick runs)")
    parser.add_argument(
        "--seeds", type=int, help="seeds for every row (default: 3 for setting (a), 5 for the others)"
    )
    parser.add_argument("--sb3-steps", type=int, default=100_000, help="RecurrentPPO step cap")
    parser.add_argument("--sb3-seconds", type=float, default=150.0, help="RecurrentPPO time cap")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, for both libraries")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 4096 steps, 3 seeds, RecurrentPPO capped at 5 s (unless given)",
    )
    parser.add_argument("--list", action="store_true", help="print the row ids and exit")
    args = parser.parse_args()
    if args.seeds is not None and args.seeds < 1:
        parser.error("--seeds must be at least 1")
    if args.quick:
        args.steps, args.seeds = args.steps or 4096, args.seeds or 3
        args.sb3_seconds = min(args.sb3_seconds, 5.0)
    results = RESULTS / ("train_speed_quick.json" if args.quick else "train_speed.json")

    torch.set_num_threads(args.threads)
    planned = plan(args)
    if args.list:
        print("\n".join(f"{row.id} ({row.seeds} seeds)" for row, _ in planned))
        return
    rows = [row for row, _ in planned]
    info = host()
    print(host_line(info), flush=True)
    print("measuring the matmul floor of setting (a) ...", flush=True)
    before = measure_floors(rows)
    floors, after = dict(before), None
    print_floors(floors)

    def save() -> None:
        summarise(rows, floors)
        report = {
            "quick": args.quick,
            "host": info,
            "floors": [asdict(f) for f in floors.values()],  # the better of before and after
            "floors_before": [asdict(f) for f in before.values()],
            "floors_after": None if after is None else [asdict(f) for f in after.values()],
            "targets": {
                "min_vs_recurrent_ppo": MIN_VS_REFERENCE,
                "max_floor_gap": MAX_FLOOR_GAP,
                "median_seconds": TIME_GOALS,
                "time_goal_seeds": TIME_GOAL_SEEDS,
            },
            "rows": [asdict(r) for r in rows],
        }
        write_json(results, report)

    # Seed by seed across rows, so that every row (and each rlcore/RecurrentPPO pair) sees
    # the machine's load at about the same times, and partial results cover every row.
    for seed in range(max((row.seeds for row in rows), default=0)):
        for row, run in planned:
            if seed < row.seeds:
                print(f"seed {seed}: {row.id} ...", end=" ", flush=True)
                result = run(row, seed)
                row.runs.append(result)
                hit = "-" if result.seconds_to_target is None else f"{result.seconds_to_target:.1f} s"
                print(f"{result.sps:,.0f} steps/s, to target {hit}", flush=True)
                save()  # partial results survive an interrupted run

    # The floor again, after the load of the runs: the better of the two is the host's.
    after = measure_floors(rows)
    for key, floor in after.items():
        if floor.steps_per_s > floors[key].steps_per_s:
            floors[key] = floor
    save()
    print()
    print(host_line(info))
    print_floors(floors)
    print_rows(rows)
    print(f"\nwrote {results}")


if __name__ == "__main__":
    main()
