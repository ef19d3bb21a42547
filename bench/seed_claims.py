"""Do the spec defaults learn on seeds they were not tuned on? The claims, checked.

    python bench/seed_claims.py                      # every claim on seeds 5-9, ~15 min on 2 cores
    python bench/seed_claims.py --seeds 20-24 --only ppo-gru
    python bench/seed_claims.py --threads 2 --workers 1   # another reduction order

The defaults (rlcore/spec.py) were tuned on seeds 0-4 and the learning tests run seeds
0-2, so a claim is only worth what it does on other seeds. Each claim is a spec of
defaults (algorithm, model, env, budget), a threshold on the mean return of the last 100
episodes, and how many of the seeds must reach it within the budget:

  REINFORCE mlp, gru_cell, gru   CartPole-v0        195 within 200k steps   4 of 5
  PPO gru, lstm                  CartPole-v1        475 within 200k         4 of 5
  PPO gru, lstm                  masked CartPole    400 within 500k         4 of 5
  PPO gru, lstm                  CueRecall-v0       0.9 within 100k         5 of 5

Runs go to `--workers` spawned processes (default one per usable core), one torch thread
each (`--threads`). The table gives, per claim, the seeds that reached the threshold, the
steps each needed, and the last-100 mean at the end; the JSON
(bench/results/seed_claims.json) keeps every run. Exits 1 when a claim fails.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
from dataclasses import asdict, dataclass

import torch
from common import RESULTS, print_table, train_watched, write_json
from matmul_floor import host, host_line

from rlcore.spec import TrainSpec


@dataclass(frozen=True)
class Claim:
    """`algo` with `model`'s defaults on `env` reaches `threshold` within `steps` on `needed`/5 seeds."""

    algo: str
    model: str
    env: str
    steps: int
    threshold: float
    needed: int  # of 5 seeds

    @property
    def id(self) -> str:
        return f"{self.algo}-{self.model}-{self.env}"


CLAIMS = [
    *(Claim("reinforce", m, "CartPole-v0", 200_000, 195.0, 4) for m in ("mlp", "gru_cell", "gru")),
    *(Claim("ppo", m, "CartPole-v1", 200_000, 475.0, 4) for m in ("gru", "lstm")),
    *(Claim("ppo", m, "CartPoleMasked-v1", 500_000, 400.0, 4) for m in ("gru", "lstm")),
    *(Claim("ppo", m, "CueRecall-v0", 100_000, 0.9, 5) for m in ("gru", "lstm")),
]


@dataclass
class SeedResult:
    claim: str
    seed: int
    steps_to_threshold: int | None  # None: not reached within the budget
    final: float | None  # last-100 mean at the end
    wall_s: float


def run_one(claim: Claim, seed: int, threads: int) -> SeedResult:
    """Train one seed of a claim with the spec defaults."""
    spec = TrainSpec.model_validate(
        {
            "algo": claim.algo,
            "model": claim.model,
            "env_id": claim.env,
            "total_steps": claim.steps,
            "seed": seed,
            "device": "cpu",
            "checkpoint_interval": 0,
            "torch_threads": threads,
        }
    )
    result, last100 = train_watched(spec, claim.threshold)
    hit = None if last100.hit is None else last100.hit[0]
    return SeedResult(claim.id, seed, hit, result.mean_return, result.wall_time)


def _thousands(steps: int | None) -> str:
    return "-" if steps is None else f"{steps / 1000:.0f}k"


def seed_range(text: str) -> list[int]:
    """'5-9' or '3,7,11' -> seeds."""
    if "-" in text:
        first, last = (int(part) for part in text.split("-"))
        return list(range(first, last + 1))
    return [int(part) for part in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=seed_range, default=seed_range("5-9"), help="'5-9' or '3,7,11'")
    parser.add_argument("--only", action="append", help="claims whose id contains this (repeatable)")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    args = parser.parse_args()
    claims = [c for c in CLAIMS if not args.only or any(o in c.id for o in args.only)]
    if not claims:
        parser.error(f"no claim matches --only {args.only}; ids: {', '.join(c.id for c in CLAIMS)}")

    info = host()
    print(host_line(info), f"| seeds {args.seeds}, {args.threads} torch thread(s) per run", flush=True)
    # The longest claims first, so that the workers end together.
    jobs = sorted(((c, s) for c in claims for s in args.seeds), key=lambda job: -job[0].steps)
    # Spawned, not forked: a forked child of a process that has used torch's threads can hang.
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        pending = [pool.apply_async(run_one, (c, s, args.threads)) for c, s in jobs]
        results: list[SeedResult] = []
        for job in pending:
            r = job.get()
            results.append(r)
            reached = "not reached" if r.steps_to_threshold is None else f"at {r.steps_to_threshold:,}"
            print(f"  {r.claim} seed {r.seed}: {reached}, final {r.final}, {r.wall_s:.0f} s", flush=True)

    rows, verdicts = [], {}
    for claim in claims:
        mine = sorted((r for r in results if r.claim == claim.id), key=lambda r: r.seed)
        reached = [r for r in mine if r.steps_to_threshold is not None]
        # The claim's "4 of 5" scaled to the seeds run: at most 5 - needed may miss per 5.
        allowed_misses = (5 - claim.needed) * len(mine) // 5
        verdicts[claim.id] = len(mine) - len(reached) <= allowed_misses
        rows.append(
            [
                claim.id,
                f"{claim.threshold:g} in {claim.steps // 1000}k",
                f"{len(reached)}/{len(mine)} (need {len(mine) - allowed_misses})",
                ", ".join(_thousands(r.steps_to_threshold) for r in mine),
                ", ".join("-" if r.final is None else f"{r.final:.4g}" for r in mine),
                "met" if verdicts[claim.id] else "NOT MET",
            ]
        )
    print()
    print(host_line(info), f"| seeds {args.seeds}, {args.threads} torch thread(s) per run")
    print_table(["claim", "threshold", "reached", "steps to it, per seed", "final last-100", "verdict"], rows)
    out = RESULTS / "seed_claims.json"
    write_json(
        out,
        {
            "host": info,
            "seeds": args.seeds,
            "threads": args.threads,
            "claims": [asdict(c) | {"id": c.id, "met": verdicts[c.id]} for c in claims],
            "runs": [asdict(r) for r in results],
        },
    )
    print(f"\nwrote {out}")
    raise SystemExit(0 if all(verdicts.values()) else 1)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
