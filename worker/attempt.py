"""What a worker writes while it runs one attempt of a job: claim it, heartbeat, points, artifacts.

Every write that matters is conditional on the attempt that owns the job, so a worker
that was presumed dead (and whose job was re-queued) cannot overwrite its successor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.job_states import announce, record_status
from app.models import Artifact, Job, JobStatus, MetricPoint, as_utc, utcnow
from app.settings import Settings

# Where the trainer leaves each kind of artifact in the job's folder (rlcore.trainer's layout);
# the policy route reads the same places.
ARTIFACT_FILES = {
    "policy": "policy.safetensors",
    "best_policy": "best/policy.safetensors",
    "checkpoint": "checkpoints/last.pt",
}


@dataclass(frozen=True)
class Claim:
    """The right to run one attempt of a job."""

    job_id: str
    attempt: int
    spec: dict[str, Any]
    user_id: int = 0


def claim_job(
    session: Session,
    settings: Settings,
    job_id: str,
    host: str,
    *,
    user_id: int | None = None,
    queue: str | None = None,
) -> Claim | None:
    """Mark a job running for this worker, or return None when nothing must run here.

    A task is a ticket to run one of its user's queued jobs on its queue: the first by
    the user's own `priority`, then age, whichever job the task was sent for. So the
    broker queue stays first come, first served between users (a priority never jumps
    other users' jobs), and every queued job still has a ticket: a task whose job ran
    on another's ticket (or was cancelled) runs the next one. A task for a running job
    whose worker stopped beating (a redelivery) takes that job over first.
    """
    job = session.get(Job, job_id)
    if job is not None:
        user_id, queue = job.user_id, job.queue
        if job.status == JobStatus.running:
            claim = _claim_one(session, settings, job, host)  # None while its worker is alive
            if claim is not None:
                return claim
    if user_id is None or queue is None:
        return None  # a job deleted since, sent by an older version without the ticket's owner
    candidates = session.scalars(
        select(Job)
        .where(Job.user_id == user_id, Job.queue == queue, Job.status == JobStatus.queued)
        .order_by(Job.priority.desc(), Job.created_at, Job.id)
    ).all()
    for candidate in candidates:  # one taken by another worker meanwhile: the next one
        claim = _claim_one(session, settings, candidate, host)
        if claim is not None:
            return claim
    return None


def _claim_one(session: Session, settings: Settings, job: Job, host: str) -> Claim | None:
    """Claim `job` unless it finished, runs with a live heartbeat, or used up its attempts.

    Fails a job that already used up its attempts, so a job that kills its worker cannot
    loop forever through reject_on_worker_lost.
    """
    session.refresh(job)
    if job.status not in (JobStatus.queued, JobStatus.running):
        return None
    job_id = job.id
    now = utcnow()
    stale_before = now - timedelta(seconds=settings.heartbeat_timeout)
    alive = job.heartbeat_at is not None and as_utc(job.heartbeat_at) > stale_before
    if job.status == JobStatus.running and alive:
        return None  # another worker is on it (a duplicate delivery)
    if job.attempts >= settings.max_attempts:
        job.error = (
            f"gave up after {job.attempts} attempts: the worker was lost each time "
            "(killed, out of memory, or crashed while training)"
        )
        record_status(session, job, JobStatus.failed, job.error)
        session.commit()
        return None
    seen_status, seen_attempts = job.status, job.attempts
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == seen_status, Job.attempts == seen_attempts)
        .values(
            status=JobStatus.running,
            attempts=seen_attempts + 1,
            worker_host=host,
            heartbeat_at=now,
            started_at=func.coalesce(Job.started_at, now),
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        session.rollback()
        return None
    session.refresh(job)
    message = f"attempt {job.attempts} on {host}"
    record_status(session, job, JobStatus.running, message)
    session.commit()
    return Claim(job_id=job.id, attempt=job.attempts, spec=dict(job.spec), user_id=job.user_id)


def insert_points(
    session: Session, job_id: str, points: list[tuple[int, dict[str, float]]], user_id: int | None = None
) -> None:
    """Insert points, ignoring steps already stored (a resumed run re-sends some)."""
    if not points:
        return
    rows = [
        {"job_id": job_id, "step": step, "values": values, "created_at": utcnow()} for step, values in points
    ]
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(MetricPoint).on_conflict_do_nothing(index_elements=["job_id", "step"]), rows)
    session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(points_version=Job.points_version + 1)
        .execution_options(synchronize_session=False)
    )
    announce(session, job_id, user_id)


def heartbeat(
    session: Session, claim: Claim, last_step: int | None, latest: dict[str, float] | None
) -> tuple[bool, bool]:
    """Write the heartbeat and progress; returns (still_owner, cancel_requested).

    The shown step never goes back: a run resumed from its checkpoint reports steps the
    job had already passed (and stored) before its worker died, until it catches up.
    """
    mine = (Job.id == claim.job_id, Job.attempts == claim.attempt, Job.status == JobStatus.running)
    values: dict[str, Any] = {"heartbeat_at": utcnow()}
    if last_step is not None:
        values["points_written"] = (
            select(func.count()).select_from(MetricPoint).where(MetricPoint.job_id == claim.job_id)
        ).scalar_subquery()
    result = session.execute(
        update(Job).where(*mine).values(**values).execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        session.rollback()
        return False, False
    if last_step is not None:
        session.execute(
            update(Job)
            .where(*mine, Job.last_step <= last_step)
            .values(last_step=last_step, latest_metrics=latest)
            .execution_options(synchronize_session=False)
        )
    cancel = session.execute(select(Job.cancel_requested).where(Job.id == claim.job_id)).scalar_one()
    announce(session, claim.job_id, claim.user_id or None)
    session.commit()
    return True, bool(cancel)


def owned_job(session: Session, claim: Claim) -> Job | None:
    """The job row if this attempt still owns it."""
    job = session.get(Job, claim.job_id)
    if job is None or job.attempts != claim.attempt or job.status != JobStatus.running:
        return None
    return job


def register_artifacts(session: Session, job: Job, settings: Settings, step: int) -> None:
    """Record the policy and checkpoint files the trainer left in the job's folder."""
    folder = settings.job_dir(job.id)
    existing = {a.kind: a for a in job.artifacts}
    for kind, relpath in ARTIFACT_FILES.items():
        path = folder / relpath
        if not path.is_file():
            continue
        artifact = existing.get(kind)
        if artifact is None:
            job.artifacts.append(Artifact(kind=kind, step=step, size_bytes=path.stat().st_size))
        else:
            artifact.step, artifact.size_bytes, artifact.created_at = step, path.stat().st_size, utcnow()
