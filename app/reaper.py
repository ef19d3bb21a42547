"""Finds running jobs whose worker stopped beating and re-queues them (or fails them after N tries).

Replays and probes whose worker stopped beating fail instead (playing one again is cheap),
so a lost one does not hold its user's replay quota. Runs in the API process (a background
loop) and once when a worker starts; updates are conditional, so several reapers at once
re-queue a job only once.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select, update

from app.db import session_scope
from app.job_states import record_status
from app.models import Job, JobStatus, Replay, ReplayStatus, utcnow
from app.queue import enqueue
from app.settings import Settings

log = logging.getLogger(__name__)


def reap_once(settings: Settings, celery: Any) -> list[str]:
    """Re-queue (or fail) every running job with a stale heartbeat, and fail such replays.

    Returns the re-queued jobs' ids.
    """
    reap_replays(settings)
    cutoff = utcnow() - timedelta(seconds=settings.heartbeat_timeout)
    requeued: list[tuple[str, str, int]] = []
    with session_scope(settings.database_url) as session:
        stale = session.scalars(
            select(Job).where(Job.status == JobStatus.running, Job.heartbeat_at < cutoff)
        ).all()
        for job in stale:
            seen = job.heartbeat_at
            won = session.execute(
                update(Job)
                .where(Job.id == job.id, Job.status == JobStatus.running, Job.heartbeat_at == seen)
                .values(heartbeat_at=utcnow())
                .execution_options(synchronize_session=False)
            ).rowcount
            if won != 1:
                continue
            session.refresh(job)
            silent = f"no heartbeat from {job.worker_host} for over {settings.heartbeat_timeout:g} s"
            if job.attempts >= settings.max_attempts:
                job.error = f"gave up after {job.attempts} attempts: worker lost ({silent})"
                record_status(session, job, JobStatus.failed, job.error)
            elif job.cancel_requested:
                record_status(session, job, JobStatus.cancelled, f"cancelled; worker lost ({silent})")
            else:
                record_status(session, job, JobStatus.queued, f"worker lost ({silent}); re-queued")
                requeued.append((job.id, job.queue, job.user_id))
    for job_id, queue, user_id in requeued:
        log.warning("re-queued job %s: its worker stopped beating", job_id)
        if celery is not None:
            enqueue(celery, settings, job_id, queue, user_id)
    return [job_id for job_id, _, _ in requeued]


def reap_replays(settings: Settings) -> list[str]:
    """Fail every running replay or probe with a stale heartbeat; returns their ids."""
    cutoff = utcnow() - timedelta(seconds=settings.heartbeat_timeout)
    silent = f"its worker was lost (no heartbeat for over {settings.heartbeat_timeout:g} s); play it again"
    with session_scope(settings.database_url) as session:
        failed = session.scalars(
            update(Replay)
            .where(
                Replay.status == ReplayStatus.running,
                # NULL: a row claimed before heartbeats were written (migration 0007).
                or_(Replay.heartbeat_at.is_(None), Replay.heartbeat_at < cutoff),
            )
            .values(status=ReplayStatus.failed, error=silent, finished_at=utcnow())
            .returning(Replay.id)
        ).all()
    for replay_id in failed:
        log.warning("failed replay %s: its worker stopped beating", replay_id)
    return list(failed)
