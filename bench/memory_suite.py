"""Memory suite: PPO with every memory model on a POPGym subset and masked Pendulum, by MMER.

    python bench/memory_suite.py             # 7 envs x 5 models x 3 seeds, 200k steps: ~25 min, 2 idle cores
    python bench/memory_suite.py --quick     # smoke run: 2 envs, mlp and gru, 1 seed, 16,384 steps
    python bench/memory_suite.py --envs popgym/RepeatPreviousEasy --models mlp,gru --seeds 5
    python bench/memory_suite.py --steps 500000 --set hidden_size=256   # longer, another spec field

Every run trains through `rlcore.trainer.train` (as the service's worker does) with one
torch thread, in a pool of --workers processes (default: one per usable core), seed 0 of
every (env, model) cell first, then seed 1, and so on, so partial results cover every cell.
A run's score is POPGym's MMER (Morad et al., ICLR 2023): the maximum over training of the
mean episodic return, `rlcore.stats.mmer` over the trainer's per-update points, pooled
into groups of at least --mmer-episodes episodes (a max over means of a handful of
episodes would reward noise).

Printed: the host, the settings, then
  - env x model: MMER mean [95% t-interval] over the seeds, and a last row with each
    model's IQM [95% stratified-bootstrap interval] over the runs of all POPGym envs
    pooled (rliable's aggregate; POPGym returns lie in [-1, 1], masked Pendulum's do not,
    so it stays out of the IQM);
  - per cell: each seed's MMER, the final mean return (last 100 episodes), the wall time
    per run (training only: median, min-max) and env steps/s.
Results go to bench/results/memory_suite.json (--quick: memory_suite_quick.json), every
run's curve with it, rewritten after each run.

PPO settings: rlcore's PPO defaults (rlcore/spec.py ALGORITHM_DEFAULTS; FAMILY_DEFAULTS has
no popgym entry) with the overrides in SUITE_PPO and ENV_SETTINGS below; the table header
prints them. POPGym's paper trained 10M steps per run (50x this budget) with RLlib's PPO
(65,536-step batches of whole episodes, RLlib's lr 5e-5 and 30 epochs, a 256-unit
memory): at 200k steps those would make three updates, so only its budget-free choices
are taken (gamma 0.99, the previous action in the observation).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import statistics
import tempfile
import time
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from common import RESULTS, ListSink, fmt_seconds, print_table, write_json
from matmul_floor import host, host_line

from rlcore import stats
from rlcore.envs import ENVS
from rlcore.spec import ModelKind, TrainSpec
from rlcore.trainer import train

POPGYM_SUBSET = (
    "popgym/RepeatPreviousEasy",
    "popgym/CountRecallEasy",
    "popgym/AutoencodeEasy",
    "popgym/PositionOnlyCartPoleEasy",
    "popgym/NoisyPositionOnlyPendulumEasy",
    "popgym/MineSweeperEasy",
)
SUITE_ENVS = (*POPGYM_SUBSET, "PendulumMasked-v1")
SUITE_MODELS = tuple(m.value for m in ModelKind)  # mlp, gru_cell, gru, lstm, window
QUICK_ENVS = ("popgym/RepeatPreviousEasy", "PendulumMasked-v1")
QUICK_MODELS = ("mlp", "gru")
DEFAULT_STEPS = 200_000
QUICK_STEPS = 16_384  # 256 steps per env: every env ends a 200-step Pendulum episode
DEFAULT_SEEDS = 3
MMER_EPISODES = 100

# Over rlcore's PPO defaults, for every run: POPGym's gamma. The core keeps the spec's 64
# units (POPGym's memory had 256): at 128, gru, lstm and window trained at about half the
# steps/s on the 2-core machine, and the suite would need twice its hour for its budget.
SUITE_PPO: dict[str, Any] = {"gamma": 0.99}
# Over SUITE_PPO, per env family or id. POPGym's protocol puts the previous action in the
# observation. Masked Pendulum's rewards reach -16 per step, so its returns are hundreds
# times larger than POPGym's (bounded by 1): rewards are scaled by the running std of the
# return, as rl-zoo3's PendulumNoVel runs (VecNormalize); reported returns stay raw.
ENV_SETTINGS: dict[str, dict[str, Any]] = {
    "popgym": {"previous_action": True},
    "PendulumMasked-v1": {"normalize_reward": True},
}


@dataclass
class Job:
    """One training run of the suite."""

    env: str
    model: str
    seed: int
    steps: int
    settings: dict[str, Any]  # spec fields over the PPO defaults

    def spec(self) -> TrainSpec:
        return TrainSpec.model_validate(
            {
                "algo": "ppo",
                "env_id": self.env,
                "model": self.model,
                "seed": self.seed,
                "total_steps": self.steps,
                "device": "cpu",
                "torch_threads": 1,  # one run per core
                "checkpoint_interval": 0,
                **self.settings,
            }
        )


@dataclass
class RunResult:
    """What one run reports: its MMER and costs, and its curve (per-update points with episodes)."""

    env: str
    model: str
    seed: int
    steps: int
    wall_s: float  # training, as the trainer clocks it
    total_s: float  # the whole job: set-up, training, checkpoint and export
    sps: float
    mmer: float | None
    final_return: float | None  # mean of the last 100 episodes
    episodes: int
    curve: dict[str, list[float]]  # step, episodic_return, episodes


def settings_for(env_id: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The spec fields a run of `env_id` sets: SUITE_PPO, its family's and its own, then --set."""
    info = ENVS[env_id]
    return {
        **SUITE_PPO,
        **ENV_SETTINGS.get(info.family, {}),
        **ENV_SETTINGS.get(env_id, {}),
        **overrides,
    }


def run_job(job: Job, mmer_episodes: float) -> RunResult:
    """Train one run (in a pool process) and score it."""
    started = time.perf_counter()
    sink = ListSink()
    with tempfile.TemporaryDirectory(prefix="rlserve-memory-suite-") as out:
        result = train(job.spec(), Path(out), sink=sink)
    total = time.perf_counter() - started
    points = [(s, m) for s, m in sink.points if "charts/episodic_return" in m]
    curve = {
        "step": [float(s) for s, _ in points],
        "episodic_return": [m["charts/episodic_return"] for _, m in points],
        "episodes": [m["charts/episodes"] for _, m in points],
    }
    score = stats.mmer(curve["step"], curve["episodic_return"], curve["episodes"], min_episodes=mmer_episodes)
    return RunResult(
        env=job.env,
        model=job.model,
        seed=job.seed,
        steps=result.steps,
        wall_s=result.wall_time,
        total_s=total,
        sps=result.steps / max(result.wall_time, 1e-9),
        mmer=score,
        final_return=result.mean_return,
        episodes=int(sum(curve["episodes"])),
        curve=curve,
    )


# -- summaries -------------------------------------------------------------------------


@dataclass
class Cell:
    """One (env, model) over its seeds."""

    env: str
    model: str
    runs: list[RunResult] = field(default_factory=list)

    @property
    def scores(self) -> list[float]:
        return [r.mmer for r in sorted(self.runs, key=lambda r: r.seed) if r.mmer is not None]

    def mean_interval(self, confidence: float = 0.95) -> stats.Interval | None:
        """Mean MMER and its Student-t interval over the seeds (zero width with one seed).

        With 3 seeds a bootstrap interval of the mean is at most the min-max of the seeds
        (there are 10 distinct resamples): the t interval does not understate the spread so.
        """
        scores = self.scores
        if not scores:
            return None
        mean = float(np.mean(scores))
        if len(scores) < 2:
            return stats.Interval(mean, mean, mean)
        half = (
            stats.t_critical(len(scores) - 1, confidence)
            * float(np.std(scores, ddof=1))
            / math.sqrt(len(scores))
        )
        return stats.Interval(mean, mean - half, mean + half)


def model_iqms(cells: dict[tuple[str, str], Cell], models: list[str]) -> dict[str, stats.Interval | None]:
    """Per model: IQM of the MMERs of every POPGym env's runs pooled, with a stratified bootstrap interval."""
    found: dict[str, stats.Interval | None] = {}
    for model in models:
        tasks = {
            env: cell.scores
            for (env, m), cell in cells.items()
            if m == model and ENVS[env].family == "popgym" and cell.scores
        }
        found[model] = stats.aggregate_interval(tasks, "iqm") if tasks else None
    return found


def _fmt(x: float) -> str:
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.2f}"


def _interval(iv: stats.Interval | None) -> str:
    return "-" if iv is None else f"{_fmt(iv.point)} [{_fmt(iv.low)}, {_fmt(iv.high)}]"


def _cell(cell: Cell) -> str:
    """Mean [interval] of a cell's MMERs; the mean alone with one seed (no spread to show)."""
    iv = cell.mean_interval()
    return _fmt(iv.point) if iv is not None and len(cell.scores) == 1 else _interval(iv)


def _seconds(values: list[float]) -> str:
    return f"{fmt_seconds(statistics.median(values))} ({fmt_seconds(min(values))}-{fmt_seconds(max(values))})"


def print_tables(cells: dict[tuple[str, str], Cell], envs: list[str], models: list[str]) -> None:
    """The env x model MMER table with the POPGym IQM row, then the per-cell details."""
    lines = [[env] + [_cell(cells[(env, m)]) for m in models] for env in envs]
    if any(ENVS[env].family == "popgym" for env in envs):
        iqms = model_iqms(cells, models)
        runs = sum(len(c.scores) for (env, _), c in cells.items() if ENVS[env].family == "popgym")
        label = f"POPGym envs: IQM [95% bootstrap], {runs // len(models)} runs"
        lines.append([label] + [_interval(iqms[m]) for m in models])
    print_table(["MMER: mean [95% t-interval] over seeds", *models], lines)
    print()
    details = []
    for env in envs:
        for model in models:
            cell = cells[(env, model)]
            if not cell.runs:
                continue
            runs = sorted(cell.runs, key=lambda r: r.seed)
            finals = [r.final_return for r in runs if r.final_return is not None]
            details.append(
                [
                    env,
                    model,
                    str(len(runs)),
                    ", ".join("-" if r.mmer is None else _fmt(r.mmer) for r in runs),
                    _cell(cell),
                    "-" if not finals else _fmt(float(np.mean(finals))),
                    _seconds([r.wall_s for r in runs]),
                    f"{statistics.median(r.sps for r in runs):,.0f}",
                ]
            )
    print_table(
        [
            "env",
            "model",
            "seeds",
            "MMER per seed",
            "MMER mean [95% CI]",
            "final (last 100), mean",
            "s per run: median (min-max)",
            "steps/s",
        ],
        details,
    )


# -- main ------------------------------------------------------------------------------


def _names(
    text: str, allowed: tuple[str, ...] | list[str], what: str, parser: argparse.ArgumentParser
) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in allowed]
    if unknown or not names:
        parser.error(f"--{what}: unknown {unknown or 'none given'}; choose from {', '.join(allowed)}")
    return names


def _overrides(items: list[str], parser: argparse.ArgumentParser) -> dict[str, Any]:
    found = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key.strip() not in TrainSpec.model_fields:
            parser.error(f"--set {item!r}: expected FIELD=VALUE with a TrainSpec field")
        found[key.strip()] = yaml.safe_load(value)
    return found


# The hyperparameters the header shows, as every run's spec holds them.
SHOWN = (
    "learning_rate",
    "anneal_lr",
    "num_envs",
    "rollout_length",
    "bptt_length",
    "epochs",
    "minibatches",
    "gamma",
    "gae_lambda",
    "clip_range",
    "vf_coef",
    "ent_coef",
    "max_grad_norm",
    "normalize_advantages",
    "normalize_obs",
    "encoder",
    "hidden_size",
    "window_length",
)


def settings_text(jobs: list[Job], overrides: dict[str, Any]) -> list[str]:
    """The header's lines: the PPO settings every run uses, what the suite changed, what each env adds."""
    spec = jobs[0].spec()
    common = {**SUITE_PPO, **overrides}
    lines = [
        "PPO: " + ", ".join(f"{k} {getattr(spec, k)}" for k in SHOWN),
        "  (rlcore's PPO defaults, with " + ", ".join(f"{k} {v}" for k, v in common.items()) + ")",
    ]
    envs_by_extra: dict[str, list[str]] = {}  # envs with the same additions share a line
    for env in dict.fromkeys(job.env for job in jobs):
        extra = {k: v for k, v in settings_for(env, overrides).items() if k not in common}
        if extra:
            envs_by_extra.setdefault(", ".join(f"{k} {v}" for k, v in extra.items()), []).append(env)
    lines += [f"  {', '.join(envs)}: {extra}" for extra, envs in envs_by_extra.items()]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--envs", help=f"comma-separated env ids (default: {', '.join(SUITE_ENVS)})")
    parser.add_argument("--models", help=f"comma-separated models (default: {', '.join(SUITE_MODELS)})")
    parser.add_argument("--steps", type=int, help=f"env steps per run (default {DEFAULT_STEPS:,})")
    parser.add_argument("--seeds", type=int, help=f"seeds per cell (default {DEFAULT_SEEDS})")
    parser.add_argument("--workers", type=int, help="runs side by side (default: one per usable core)")
    parser.add_argument(
        "--mmer-episodes",
        type=float,
        default=MMER_EPISODES,
        help=f"MMER: pool points into groups of at least this many episodes (default {MMER_EPISODES})",
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE", help="a spec field for every run"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: {', '.join(QUICK_ENVS)} x {', '.join(QUICK_MODELS)}, 1 seed, {QUICK_STEPS:,} steps",
    )
    parser.add_argument("--list", action="store_true", help="print the runs and exit")
    args = parser.parse_args()
    envs = (
        _names(args.envs, list(ENVS), "envs", parser)
        if args.envs
        else list(QUICK_ENVS if args.quick else SUITE_ENVS)
    )
    models = (
        _names(args.models, SUITE_MODELS, "models", parser)
        if args.models
        else list(QUICK_MODELS if args.quick else SUITE_MODELS)
    )
    steps = args.steps or (QUICK_STEPS if args.quick else DEFAULT_STEPS)
    seeds = args.seeds or (1 if args.quick else DEFAULT_SEEDS)
    workers = args.workers or len(os.sched_getaffinity(0))
    if min(steps, seeds, workers) < 1 or args.mmer_episodes <= 0:
        parser.error("--steps, --seeds, --workers and --mmer-episodes must be positive")
    overrides = _overrides(args.set, parser)

    jobs = [
        Job(env, model, seed, steps, settings_for(env, overrides))
        for seed in range(seeds)
        for env in envs
        for model in models
    ]
    for job in jobs:  # a bad spec fails here, before any run starts
        try:
            job.spec()
        except ValueError as e:
            parser.error(f"{job.env} / {job.model}: {e}")
    if args.list:
        print("\n".join(f"{j.env} {j.model} seed {j.seed}: {j.steps:,} steps, {j.settings}" for j in jobs))
        return

    results = RESULTS / ("memory_suite_quick.json" if args.quick else "memory_suite.json")
    torch.set_num_threads(1)  # as in the runs, for the host line; this process only waits
    info = host()
    header = [
        host_line(info),
        f"{len(jobs)} runs: {len(envs)} envs x {len(models)} models x {seeds} seeds, "
        f"{steps:,} env steps each, {workers} at a time (one torch thread each); "
        f"MMER over groups of >= {args.mmer_episodes:g} episodes",
        *settings_text(jobs, overrides),
    ]
    print("\n".join(header), flush=True)
    cells = {(env, model): Cell(env, model) for env in envs for model in models}
    started = time.perf_counter()

    def save() -> None:
        report = {
            "quick": args.quick,
            "host": info,
            "header": header,
            "steps": steps,
            "seeds": seeds,
            "workers": workers,
            "mmer_episodes": args.mmer_episodes,
            "settings": {env: settings_for(env, overrides) for env in envs},
            "seconds": time.perf_counter() - started,
            "cells": [
                {
                    "env": c.env,
                    "model": c.model,
                    "mmer": None if (iv := c.mean_interval()) is None else iv._asdict(),
                    "runs": [asdict(r) for r in sorted(c.runs, key=lambda r: r.seed)],
                }
                for c in cells.values()
            ],
            "popgym_iqm": {
                m: None if iv is None else iv._asdict() for m, iv in model_iqms(cells, models).items()
            },
        }
        write_json(results, report)

    # Spawned, not forked: a forked child of a process that has used torch's thread pool can hang.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures: dict[Future[RunResult], Job] = {
            pool.submit(run_job, job, args.mmer_episodes): job for job in jobs
        }
        for done, future in enumerate(as_completed(futures), 1):
            run = future.result()
            cells[(run.env, run.model)].runs.append(run)
            mmer = "-" if run.mmer is None else _fmt(run.mmer)
            print(
                f"[{done}/{len(jobs)}, {time.perf_counter() - started:.0f} s] {run.env} {run.model} "
                f"seed {run.seed}: MMER {mmer}, {run.sps:,.0f} steps/s, {run.wall_s:.0f} s",
                flush=True,
            )
            save()  # partial results survive an interrupted run

    elapsed = time.perf_counter() - started
    print()
    print("\n".join(header))
    print_tables(cells, envs, models)
    print(f"\n{len(jobs)} runs in {elapsed / 60:.1f} min; wrote {results}")


if __name__ == "__main__":
    main()
