"""Job state transitions shared by the API and the worker. The database is the source of truth."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.models import Job, JobEvent, JobStatus, utcnow
from app.settings import Settings

TASK_NAME = "rlserve.run_job"
CHANGES_CHANNEL = "rlserve_jobs"  # PostgreSQL NOTIFY channel the API's hubs listen on (app/hub.py)


def record_status(session: Session, job: Job, status: JobStatus, message: str | None = None) -> None:
    """Set a job's status and append the transition, with its time, to the job's history."""
    now = utcnow()
    job.status = status
    if status == JobStatus.running and job.started_at is None:
        job.started_at = now
    if status in (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled):
        job.finished_at = now
    session.add(JobEvent(job_id=job.id, status=status, at=now, message=message))
    announce(session, job.id, job.user_id)


def announce(session: Session, job_id: str, user_id: int | None = None) -> None:
    """Tell every API process's hub that the job changed, when this transaction commits.

    PostgreSQL: a NOTIFY, which is delivered at commit and dropped on rollback, so a
    stream never reads before the change is visible. SQLite: nothing; the hub polls.
    """
    if session.get_bind().dialect.name == "postgresql":
        payload = job_id if user_id is None else f"{job_id} {user_id}"
        session.execute(
            text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANGES_CHANNEL, "payload": payload}
        )


def queue_for_device(settings: Settings, device: str) -> str:
    """Queue kind a job goes to: `cuda` needs a GPU worker; `auto` follows RLSERVE_AUTO_QUEUE."""
    if device == "cuda":
        return "gpu"
    if device == "cpu":
        return "cpu"
    return settings.auto_queue


def enqueue(celery: Any, settings: Settings, job_id: str, queue: str, user_id: int) -> None:
    """Send the job's task to its queue. The ids travel, the worker reads the rest from the database.

    Every task goes at the same broker priority, so the shared queue is first come, first
    served between users; the task is a ticket for one of its user's queued jobs, and a
    job's `priority` only orders its owner's jobs (worker/lifecycle.py).
    """
    celery.send_task(
        TASK_NAME,
        args=[job_id],
        kwargs={"user_id": user_id, "queue": queue},
        queue=settings.queue_name(queue),
        ignore_result=True,
    )
