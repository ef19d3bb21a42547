"""Chaos: the worker SIGKILLed at 3 random points of one job, on PostgreSQL + Redis.

The job still succeeds, every update's point is stored exactly once, and every metric
equals that of an uninterrupted run of the same spec: each attempt resumes bit-exactly
from the last checkpoint, so the points it sends again are the ones already stored.
A replay whose worker is killed fails with the reason, instead of staying "running".
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rlcore.metrics import JsonlSink
from rlcore.spec import TrainSpec
from rlcore.trainer import last_checkpoint_step, train
from tests.conftest import Stack, running_stack

KILLS = 3
SEED = 20261201  # of the kill points; fixed, so a failure replays the same kills
# a2c: every update is num_envs * rollout_length steps (REINFORCE's size varies).
SPEC: dict[str, Any] = {
    "algo": "a2c",
    "model": "mlp",
    "env_id": "CartPole-v1",
    "total_steps": 40_000,
    "num_envs": 4,
    "rollout_length": 25,
    "checkpoint_interval": 2_000,
}
BATCH = SPEC["num_envs"] * SPEC["rollout_length"]
# Differ between any two runs, interrupted or not.
WALL_CLOCK = {"perf/sps", "perf/wall_time"}
TOLERANCE = 1e-9

Points = dict[int, dict[str, float]]


@pytest.fixture(scope="module")
def pg_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A PostgreSQL + Redis stack of its own (its worker gets killed) that lets a job's
    worker be lost KILLS times before the job is failed."""
    data_dir = tmp_path_factory.mktemp("rlserve-chaos")
    with running_stack("postgres", data_dir, max_attempts=KILLS + 1) as running:
        yield running
        errors = list(running.server_errors)
    assert not errors, f"the API answered 5xx: {errors}"


def kill_targets(rng: random.Random) -> list[int]:
    """One random step in each of KILLS equal windows of the run's first 70%, off the checkpoints.

    The last 30% is the margin for the job to run past a target before the kill lands.
    """
    interval = SPEC["checkpoint_interval"]
    checkpoints = list(range(interval, int(SPEC["total_steps"] * 0.7), interval))
    size = len(checkpoints) // KILLS
    windows = [checkpoints[i * size : (i + 1) * size] for i in range(KILLS)]
    return [rng.choice(window) + rng.randrange(BATCH, interval, BATCH) for window in windows]


def stored_points(series: dict[str, dict[str, list[Any]]]) -> Points:
    """The API's per-key series turned back into one dict of metrics per step."""
    points: Points = {}
    for key, curve in series.items():
        for step, value in zip(curve["steps"], curve["values"], strict=True):
            points.setdefault(step, {})[key] = value
    return points


def uninterrupted_points(spec: dict[str, Any], out_dir: Path) -> Points:
    """Train `spec` in this process, never stopped; its points."""
    sink = JsonlSink(out_dir / "metrics.jsonl")
    train(TrainSpec.from_saved(spec), out_dir, sink=sink)
    lines = sink.path.read_text().splitlines()
    return {point.pop("step"): point for point in map(json.loads, lines)}


def differences(got: Points, want: Points) -> list[str]:
    """Where `got` differs from `want` (wall-clock metrics aside)."""
    found = []
    for step, expected in want.items():
        actual = got.get(step, {})
        for key in sorted((expected.keys() | actual.keys()) - WALL_CLOCK):
            a, e = actual.get(key), expected.get(key)
            if a is None or e is None or abs(a - e) > TOLERANCE:
                found.append(f"step {step} {key}: stored {a}, uninterrupted {e}")
    return found


def test_three_sigkills_leave_the_metrics_of_an_uninterrupted_run(pg_stack: Stack, tmp_path: Path) -> None:
    stack = pg_stack
    job = stack.submit(**SPEC)
    job_dir = stack.settings.job_dir(job["id"])
    kills: list[tuple[int, int | None]] = []  # (job step seen at the kill, checkpoint then)
    seen = 0
    for attempt, target in enumerate(kill_targets(random.Random(SEED)), start=1):
        # Past the step the previous attempt reached: the step the API shows stays at that
        # attempt's last heartbeat until this attempt reports a point of its own.
        target = max(target, seen + BATCH)
        stack.wait_for(
            job["id"],
            lambda j, a=attempt, t=target: j["status"] == "running" and j["attempts"] == a and j["step"] >= t,
            timeout=120,
            what=f"attempt {attempt} to pass step {target}",
        )
        stack.worker.kill()
        killed = stack.client().get(f"/api/jobs/{job['id']}").json()
        assert killed["status"] == "running" and killed["step"] < SPEC["total_steps"], killed
        seen = killed["step"]
        kills.append((seen, last_checkpoint_step(job_dir)))
        stack.worker.start()

    done = stack.wait_finished(job["id"], timeout=180)
    assert done["status"] == "succeeded", (done, kills)
    assert done["attempts"] == KILLS + 1, (done, kills)
    requeues = [h for h in done["history"] if "re-queued" in (h["message"] or "")]
    assert len(requeues) == KILLS, done["history"]

    series = stack.metric_series(job["id"])
    every_update = list(range(BATCH, SPEC["total_steps"] + 1, BATCH))
    assert series["perf/sps"]["steps"] == every_update, kills  # each update's step, once
    got = stored_points(series)
    assert sorted(got) == every_update, kills
    assert done["points_written"] == len(every_update)

    want = uninterrupted_points(done["spec"], tmp_path / "uninterrupted")
    assert sorted(want) == every_update
    mismatches = differences(got, want)
    assert not mismatches, f"{len(mismatches)} differences (kills {kills}): {mismatches[:10]}"


def test_a_probe_whose_worker_is_killed_fails_with_the_reason(pg_stack: Stack) -> None:
    stack = pg_stack
    client = stack.client()
    masked = {**SPEC, "env_id": "CartPoleMasked-v1", "total_steps": 2_000}
    job = stack.wait_finished(stack.submit(**masked)["id"])
    assert job["status"] == "succeeded", job
    # 256 episodes: seconds of recording, time enough to see it running and kill it.
    long_probe = {"kind": "probe", "episodes": 256, "max_steps": 1_000}
    created = client.post(f"/api/jobs/{job['id']}/replays", json=long_probe)
    assert created.status_code == 202, created.text
    replay_id = created.json()["id"]
    stack.wait_replay(replay_id, timeout=60, statuses=("running", "ready", "failed"))
    stack.worker.kill()
    assert client.get(f"/api/replays/{replay_id}").json()["status"] == "running"
    stack.worker.start()

    lost = stack.wait_replay(replay_id, timeout=60)
    assert lost["status"] == "failed" and "worker was lost" in lost["error"], lost
    assert lost["finished_at"] and lost["data"] is None
    # The worker that came back records the next one.
    again = client.post(f"/api/jobs/{job['id']}/replays", json={"kind": "probe", "episodes": 8})
    assert again.status_code == 202, again.text
    assert stack.wait_replay(again.json()["id"])["status"] == "ready"
