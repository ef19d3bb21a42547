"""Run one attempt of a job: claim it, train with rlcore, record the outcome."""

from __future__ import annotations

import logging
import socket
import traceback
from typing import TYPE_CHECKING, Any

from app.db import session_scope
from app.job_states import record_status
from app.models import Job, JobStatus
from app.queue import enqueue
from app.quotas import point_stride
from app.settings import Settings
from worker.attempt import Claim, claim_job, owned_job, register_artifacts
from worker.shutdown import SHUTDOWN
from worker.sink import BufferedSink, JobMonitor, Thinner

if TYPE_CHECKING:  # rlcore imports torch; the task imports it only when it runs
    from rlcore.spec import TrainSpec
    from rlcore.trainer import TrainResult

log = logging.getLogger(__name__)
MAX_ERROR_CHARS = 2000


def short_error(error: BaseException) -> str:
    """The error as one line for the database, cut to MAX_ERROR_CHARS."""
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


def execute_job(
    settings: Settings,
    job_id: str,
    celery: Any = None,
    user_id: int | None = None,
    queue: str | None = None,
) -> str:
    """Run the job this task is a ticket for (see `claim_job`); returns what happened, for the log."""
    host = socket.gethostname()
    with session_scope(settings.database_url) as session:
        claim = claim_job(session, settings, job_id, host, user_id=user_id, queue=queue)
    if claim is None:
        return "skipped"
    return _train(settings, claim, celery)


def _train(settings: Settings, claim: Claim, celery: Any) -> str:
    # rlcore (torch) is imported here, inside the task: the pool child, never the parent,
    # touches the device, so CUDA is not initialised before the fork (celery#3402).
    from rlcore.device import resolve_device
    from rlcore.spec import TrainSpec
    from rlcore.trainer import last_checkpoint_step, train

    out_dir = settings.job_dir(claim.job_id)
    sink = BufferedSink()
    monitor = JobMonitor(settings, claim, sink)
    try:
        spec = TrainSpec.from_saved(claim.spec)
        device = str(resolve_device(spec.device))
        resumed = last_checkpoint_step(out_dir) if out_dir.exists() else None
        sink.thinner = thinner_for(spec, settings.max_points_per_job, resumed or 0)
        with session_scope(settings.database_url) as session:
            job = owned_job(session, claim)
            if job is None:
                return "lost"
            job.device = device
            if resumed is not None:
                job.resumed_from_step = resumed
                record_status(session, job, JobStatus.running, _resume_message(job, resumed))
        monitor.start()
        result = train(spec, out_dir, sink=sink, should_stop=monitor.should_stop)
    except Exception as error:
        log.error("job %s failed:\n%s", claim.job_id, traceback.format_exc())
        if monitor.is_alive():
            monitor.stop()
        return _finish(settings, claim, JobStatus.failed, short_error(error), None)
    monitor.stop()
    if monitor.lost.is_set():
        return "lost"
    if result.stopped and monitor.cancel.is_set():
        message = f"cancelled at step {result.steps}; last checkpoint and policy kept"
        return _finish(settings, claim, JobStatus.cancelled, message, result)
    if result.stopped and SHUTDOWN.is_set():
        return _requeue(settings, claim, celery, result.steps)
    return _finish(settings, claim, JobStatus.succeeded, f"trained {result.steps} steps", result)


def _resume_message(job: Job, step: int) -> str:
    if job.forked_at_step == step and job.attempts == 1:  # the checkpoint the API wrote for the fork
        return f"started from the checkpoint of job {job.parent_id or '(deleted)'} at step {step} (a fork)"
    return f"resumed from checkpoint at step {step}"


def thinner_for(spec: TrainSpec, max_points: int, start_step: int = 0) -> Thinner:
    """The cadence that keeps `spec`'s stored points under `max_points` (resuming at `start_step`)."""
    batch = spec.num_envs * spec.rollout_length
    return Thinner(point_stride(spec, max_points), batch, spec.total_steps, start_step)


def _requeue(settings: Settings, claim: Claim, celery: Any, step: int) -> str:
    """Put a job stopped by a worker shutdown back in its queue; it resumes from its checkpoint."""
    with session_scope(settings.database_url) as session:
        job = owned_job(session, claim)
        if job is None:
            return "lost"
        # The shutdown is not the job's fault: this attempt does not count against it.
        job.attempts -= 1
        record_status(session, job, JobStatus.queued, f"worker shut down at step {step}; re-queued")
        queue = job.queue
    if celery is not None:
        enqueue(celery, settings, claim.job_id, queue, claim.user_id)
    return "requeued"


def _finish(
    settings: Settings, claim: Claim, status: JobStatus, message: str, result: TrainResult | None
) -> str:
    with session_scope(settings.database_url) as session:
        job = owned_job(session, claim)
        if job is None:
            return "lost"
        step = job.last_step if result is None else result.steps
        if result is not None:
            job.last_step = step
            job.mean_return = result.mean_return
            job.best_return = result.best_return
            job.train_seconds = result.wall_time
        if status == JobStatus.failed:
            job.error = message
        register_artifacts(session, job, settings, step)
        record_status(session, job, status, message)
    return status.value
