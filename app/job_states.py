"""Job status transitions, shared by the API, the reaper and the worker; the database is the truth."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.models import FINISHED, Job, JobEvent, JobStatus, utcnow
from app.run_scores import store_scores

CHANGES_CHANNEL = "rlserve_jobs"  # PostgreSQL NOTIFY channel the API's hubs listen on (app/hub.py)


def record_status(session: Session, job: Job, status: JobStatus, message: str | None = None) -> None:
    """Set a job's status and append the transition, with its time, to the job's history.

    A job that finishes gets its scores (final, MMER, eval) from its stored points.
    """
    now = utcnow()
    job.status = status
    if status == JobStatus.running and job.started_at is None:
        job.started_at = now
    if status in FINISHED:
        job.finished_at = now
        store_scores(session, job)
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
