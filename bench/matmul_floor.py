"""The host a benchmark ran on, and the matmul floor of one recurrent PPO update on it.

The floor is the time of the matmuls that one update of a GRU/LSTM layer over a rollout
must perform (as `rlcore/models/recurrence.py` runs them on a CPU, plus the policy and
value heads), each timed at its exact shape with torch.mm/addmm in a tight loop. Nothing else
of the update (elementwise gate math, autograd, the optimiser) and nothing of the
rollout (env steps, acting) is in it, so a training run can only approach it: the floor,
as env steps/s, is an upper bound on what the host can do at these sizes.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

GATES = {"gru": 3, "lstm": 4}


def host() -> dict[str, object]:
    """CPU model, cores, torch's CPU capability and threads: what the speed rows depend on."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass  # not Linux: platform's answer stands
    vector = [f for f in ("avx512f", "avx512_bf16", "amx_tile", "avx2", "fma") if f in flags]
    return {
        "cpu": model,
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "vector_flags": vector,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def host_line(info: dict[str, object]) -> str:
    """One line naming the host, for the top of a table."""
    flags = ", ".join(info["vector_flags"]) or "no AVX2/AVX-512"  # type: ignore[arg-type]
    load = "" if info["load_1min"] is None else f"; load {info['load_1min']:.1f} at start"
    return (
        f"host: {info['cpu']} ({info['machine']}), {info['cores_usable']}/{info['cores']} cores usable, "
        f"{flags}; torch {info['torch']} CPU capability {info['torch_cpu_capability']}, "
        f"{info['torch_threads']} thread(s){load}"
    )


@dataclass(frozen=True)
class Matmul:
    """`count` products (m, k) x (k, n) per minibatch."""

    what: str
    m: int
    k: int
    n: int
    count: int


def update_matmuls(
    kind: str, steps: int, batch: int, features: int, hidden: int, actions: int
) -> list[Matmul]:
    """The matmuls of one minibatch of `batch` sequences of `steps` steps through one layer.

    x (steps*batch, features) feeds the layer straight (`encoder: none`). The policy and
    value heads count as one product of actions + 1 outputs. The gradient of x itself is
    left out: nothing needs it.
    """
    gates, rows = GATES[kind] * hidden, steps * batch
    return [
        Matmul("input projection x W_ih^T", rows, features, gates, 1),
        Matmul("forward step h W_hh^T", batch, hidden, gates, steps),
        Matmul("heads forward", rows, hidden, actions + 1, 1),
        Matmul("heads backward, d features", rows, actions + 1, hidden, 1),
        Matmul("heads backward, d weights", actions + 1, rows, hidden, 1),
        Matmul("backward step d_gates W_hh", batch, gates, hidden, steps),
        Matmul("d W_ih = d_gates^T x", gates, rows, features, 1),
        Matmul("d W_hh = d_gates^T h", gates, rows, hidden, 1),
    ]


def time_matmul(mm: Matmul, target_s: float = 0.01, repeats: int = 5) -> float:
    """Seconds per product at this shape: the best of `repeats` loops of ~target_s each, and
    of the layouts a caller may choose (W or a transposed view of W^T; mm into a buffer or
    addmm_ onto it), since MKL's speed at skinny shapes depends on them by up to 4x."""
    a = torch.randn(mm.m, mm.k) * 0.01
    b_rows, b_cols = torch.randn(mm.k, mm.n) * 0.01, (torch.randn(mm.n, mm.k) * 0.01).t()
    out = torch.zeros(mm.m, mm.n)
    best = float("inf")
    for b in (b_rows, b_cols):
        for call in (lambda b=b: torch.mm(a, b, out=out), lambda b=b: out.addmm_(a, b)):
            best = min(best, _best_loop(call, target_s, repeats))
    return best


def _best_loop(call: Callable[[], object], target_s: float, repeats: int) -> float:
    def loop(n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            call()
        return time.perf_counter() - started

    loop(10)  # warm-up: first-call dispatch and caches
    calls = 10
    while (spent := loop(calls)) < target_s / 4:
        calls *= 4
    calls = max(1, int(calls * target_s / max(spent, 1e-9)))
    return min(loop(calls) for _ in range(repeats)) / calls


@dataclass
class Floor:
    """The matmul floor of one PPO update, per minibatch and as env steps/s."""

    kind: str
    steps: int
    envs: int
    features: int
    hidden: int
    epochs: int
    minibatches: int
    update_ms: float
    steps_per_s: float
    parts_us: dict[str, float]  # per minibatch, each matmul's total


def ppo_floor(
    kind: str,
    *,
    num_envs: int,
    rollout_length: int,
    minibatches: int,
    epochs: int,
    hidden_size: int,
    features: int,
    actions: int,
    times: dict[Matmul, float],
) -> Floor:
    """Measure the floor of one PPO update (whole-rollout chunks) with these sizes.

    `times` caches seconds per product across calls, so shapes shared by several floors
    are timed once; pass a fresh dict to measure again.
    """
    parts = update_matmuls(kind, rollout_length, num_envs // minibatches, features, hidden_size, actions)
    for mm in parts:
        if mm not in times:
            times[mm] = time_matmul(mm)
    per_minibatch = {mm.what: times[mm] * mm.count * 1e6 for mm in parts}
    update_s = sum(per_minibatch.values()) * 1e-6 * epochs * minibatches
    return Floor(
        kind,
        rollout_length,
        num_envs,
        features,
        hidden_size,
        epochs,
        minibatches,
        update_s * 1e3,
        num_envs * rollout_length / update_s,
        per_minibatch,
    )
