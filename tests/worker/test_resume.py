"""A worker killed mid-job: the job resumes from its checkpoint; every step's point exactly once.

A worker asked to stop (SIGTERM, Ctrl-C) stops its job at once, checkpointed, back in the queue.

Also: a job whose worker keeps dying is failed after 3 attempts instead of looping.
"""

from __future__ import annotations

import signal
import time
from datetime import timedelta

from app.db import session_scope
from app.models import Job, utcnow
from app.reaper import reap_once
from rlcore.trainer import last_checkpoint_step
from tests.conftest import Stack
from worker.attempt import Claim, heartbeat


def test_sigkill_mid_job_resumes_from_checkpoint(stack: Stack) -> None:
    spec = {
        "algo": "a2c",
        "total_steps": 30_000,
        "num_envs": 2,
        "rollout_length": 50,
        "checkpoint_interval": 1000,
    }
    job = stack.submit(**spec)
    job_dir = stack.settings.job_dir(job["id"])
    stack.wait_for(
        job["id"],
        lambda j: j["step"] >= 6000 and (last_checkpoint_step(job_dir) or 0) >= 3000,
        what="a checkpoint",
    )
    stack.worker.kill()
    killed_at = stack.client().get(f"/api/jobs/{job['id']}").json()
    assert killed_at["status"] == "running" and killed_at["step"] < spec["total_steps"]
    checkpoint = last_checkpoint_step(job_dir)
    assert checkpoint is not None and checkpoint > 0

    stack.worker.start()
    done = stack.wait_finished(job["id"], timeout=120)
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 2
    assert done["resumed_from_step"] is not None and done["resumed_from_step"] >= checkpoint
    messages = [h["message"] or "" for h in done["history"]]
    assert any("re-queued" in m for m in messages), messages
    assert any("resumed from checkpoint" in m for m in messages), messages

    steps = stack.metric_series(job["id"])["perf/sps"]["steps"]
    batch = spec["num_envs"] * spec["rollout_length"]
    assert steps == list(range(batch, spec["total_steps"] + 1, batch))  # every step once, none lost
    assert done["points_written"] == len(steps)


def test_worker_shutdown_requeues_the_job_with_a_checkpoint(stack: Stack) -> None:
    # No periodic checkpoint: the one the job resumes from is written because of the stop.
    spec = {
        "algo": "a2c",
        "total_steps": 40_000,
        "num_envs": 2,
        "rollout_length": 50,
        "checkpoint_interval": 0,
    }
    job = stack.submit(**spec)
    job_dir = stack.settings.job_dir(job["id"])
    stack.wait_for(job["id"], lambda j: j["status"] == "running" and j["step"] >= 2000, what="progress")
    assert last_checkpoint_step(job_dir) is None

    # SIGTERM is `docker stop` and `rlserve up`'s stop; SIGINT is Ctrl-C on `rlserve worker`.
    sig = signal.SIGTERM if stack.backend == "embedded" else signal.SIGINT
    asked = time.monotonic()
    stack.worker.interrupt(sig, timeout=15)
    assert time.monotonic() - asked < 10, "the worker did not stop its job promptly"
    stopped = stack.client().get(f"/api/jobs/{job['id']}").json()
    assert stopped["status"] == "queued", stopped  # re-queued by the worker, not by the reaper
    assert "worker shut down at step" in stopped["history"][-1]["message"]
    assert stopped["attempts"] == 0  # a shutdown does not count against the job
    checkpoint = last_checkpoint_step(job_dir)
    assert checkpoint is not None and 2000 <= checkpoint < spec["total_steps"]
    assert stopped["step"] == checkpoint  # the points up to the checkpoint are all stored

    stack.worker.start()
    done = stack.wait_finished(job["id"], timeout=120)
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 1 and done["resumed_from_step"] == checkpoint
    steps = stack.metric_series(job["id"])["perf/sps"]["steps"]
    batch = spec["num_envs"] * spec["rollout_length"]
    assert steps == list(range(batch, spec["total_steps"] + 1, batch))  # every step once
    assert not stack.server_errors


def test_job_whose_worker_keeps_dying_fails_after_three_attempts(stack: Stack) -> None:
    # A job that was started 3 times and whose worker went silent: the reaper gives up on it.
    job = stack.submit(total_steps=200)
    stack.wait_finished(job["id"])
    with session_scope(stack.settings.database_url) as session:
        row = session.get(Job, job["id"])
        assert row is not None
        row.status, row.attempts = "running", 3
        row.heartbeat_at = utcnow() - timedelta(seconds=stack.settings.heartbeat_timeout * 3)
    assert reap_once(stack.settings, None) == []
    failed = stack.client().get(f"/api/jobs/{job['id']}").json()
    assert failed["status"] == "failed"
    assert "gave up after 3 attempts" in failed["error"]
    assert failed["history"][-1]["status"] == "failed"


def test_a_resumed_attempt_never_moves_the_shown_step_back(stack: Stack) -> None:
    # The job as its first worker left it (killed at step 66,560, checkpoint at 61,440);
    # its second attempt resumes from the checkpoint and reports 61,440 + a few updates.
    job = stack.submit(total_steps=200)
    stack.wait_finished(job["id"])
    with session_scope(stack.settings.database_url) as session:
        row = session.get(Job, job["id"])
        assert row is not None
        row.status, row.attempts, row.last_step = "running", 2, 66_560
        row.latest_metrics = {"perf/sps": 1000.0}
        user_id = row.user_id
    claim = Claim(job_id=job["id"], attempt=2, spec={}, user_id=user_id)
    with session_scope(stack.settings.database_url) as session:
        assert heartbeat(session, claim, 61_440 + 1024, {"perf/sps": 900.0}) == (True, False)
    behind = stack.client().get(f"/api/jobs/{job['id']}").json()
    assert behind["step"] == 66_560  # not 62,464
    assert behind["latest_metrics"] == {"perf/sps": 1000.0}
    with session_scope(stack.settings.database_url) as session:
        heartbeat(session, claim, 67_584, {"perf/sps": 950.0})
    ahead = stack.client().get(f"/api/jobs/{job['id']}").json()
    assert ahead["step"] == 67_584 and ahead["latest_metrics"] == {"perf/sps": 950.0}
    with session_scope(stack.settings.database_url) as session:
        session.get(Job, job["id"]).status = "succeeded"  # type: ignore[union-attr]
