"""What the routes do with jobs, kept out of the routes: look-ups, creation, views."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from typing import Any

from fastapi import HTTPException, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy import delete, update
from sqlalchemy.orm import Session, lazyload

from app import schemas
from app.auth import CurrentUser
from app.job_states import announce, record_status
from app.models import Group, Job, JobStatus, JobTag, MetricPoint, Replay
from app.queue import enqueue, queue_for_device
from app.quotas import reserve_active_jobs
from app.run_scores import RunScores, stored_scores
from app.settings import Settings
from app.studies.stats import score_aggregates
from rlcore.spec import TrainSpec


def get_owned_job(session: Session, user: CurrentUser, job_id: str, *, relations: bool = True) -> Job:
    """The job if it exists and belongs to `user`; 404 otherwise (another user's job does not exist).

    `relations=False`: its tags, history and artifacts load only if read (three queries
    fewer for a route that needs the row alone).
    """
    options = [] if relations else [lazyload(Job.tags), lazyload(Job.events), lazyload(Job.artifacts)]
    job = session.get(Job, job_id, options=options) if job_id.isalnum() and len(job_id) <= 32 else None
    if job is None or job.user_id != user.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"job {job_id} not found")
    return job


def request_hash(payload: Any) -> str:
    """A digest of a request body, to spot an Idempotency-Key reused for a different request."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def new_job(
    user: CurrentUser,
    spec: TrainSpec,
    settings: Settings,
    *,
    name: str | None,
    tags: list[str],
    priority: int,
    group_id: str | None = None,
    study_id: str | None = None,
    cell_id: int | None = None,
) -> Job:
    """A queued job row (not yet added to a session)."""
    job = Job(
        user_id=user.id,
        group_id=group_id,
        study_id=study_id,
        cell_id=cell_id,
        name=name,
        priority=priority,
        spec=spec.model_dump(mode="json"),
        queue=queue_for_device(settings, spec.device),
        status=JobStatus.queued,
    )
    job.tags = [JobTag(tag=tag) for tag in dict.fromkeys(tags)]
    return job


def add_and_enqueue(
    session: Session, celery: Any, settings: Settings, jobs: list[Job], message: str = "submitted"
) -> None:
    """Store the jobs with their `queued` event, commit, then send their tasks.

    429 (and nothing stored) when the user's queued and running jobs would exceed their
    quota. The commit comes first so a worker never receives a task for a row it cannot
    see; a job whose task cannot be sent is failed with the reason, not left queued forever.
    """
    reserve_active_jobs(session, settings, jobs[0].user_id, len(jobs))
    for job in jobs:
        session.add(job)
        session.flush()
        record_status(session, job, JobStatus.queued, message)
    session.commit()
    send_tasks(session, celery, settings, jobs)


def send_tasks(session: Session, celery: Any, settings: Settings, jobs: list[Job]) -> None:
    """Send the tasks of jobs committed as queued; 503 (and the job failed) when the queue is unreachable."""
    for job in jobs:
        try:
            enqueue(celery, settings, job.id, job.queue, job.user_id)
        except Exception as error:
            job.error = f"could not reach the task queue: {type(error).__name__}: {error}"
            record_status(session, job, JobStatus.failed, job.error)
            session.commit()
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, job.error) from None


def request_cancel(session: Session, job: Job) -> bool:
    """Cancel a queued job at once, or ask a running one to stop (not committed).

    False when the job already succeeded or failed; a cancelled job stays as it is.
    """
    if job.status == JobStatus.queued:
        # Conditional, so a worker claiming the job at this instant cannot be overruled silently.
        done = session.execute(
            update(Job)
            .where(Job.id == job.id, Job.status == JobStatus.queued)
            .values(status=JobStatus.cancelled, cancel_requested=True)
            .execution_options(synchronize_session=False)
        ).rowcount
        session.refresh(job)
        if done == 1:
            record_status(session, job, JobStatus.cancelled, "cancelled before it started")
            return True
    if job.status == JobStatus.running:
        job.cancel_requested = True
        announce(session, job.id, job.user_id)
        return True
    return job.status == JobStatus.cancelled


def delete_jobs(session: Session, settings: Settings, jobs: Sequence[Job], also: Sequence[Any] = ()) -> None:
    """Delete finished jobs with their metric points and files, and the rows in `also`; commits."""
    ids = [job.id for job in jobs]
    if ids:
        session.execute(delete(MetricPoint).where(MetricPoint.job_id.in_(ids)))
        session.execute(delete(Replay).where(Replay.job_id.in_(ids)))  # their files go with the folder
    for row in (*jobs, *also):
        session.delete(row)
        session.flush()  # the jobs go before what they refer to (a study's cells)
    session.commit()
    for job_id in ids:
        shutil.rmtree(settings.job_dir(job_id), ignore_errors=True)


def spec_validation_error(error: ValidationError, *loc: str) -> RequestValidationError:
    """A 422 for a spec that failed validation, its fields located under `loc` (e.g. "body", "spec")."""
    errors = error.errors(include_url=False, include_context=False)
    return RequestValidationError([{**e, "loc": (*loc, *e["loc"])} for e in errors])


def job_out(job: Job, scores: RunScores | None = None) -> schemas.Job:
    """The API's view of a job row; `scores` default: those stored on it (none while it runs)."""
    scores = scores or stored_scores(job)
    total = job.total_steps
    step = job.last_step or 0
    latest = job.latest_metrics or None
    eta: float | None = None
    if job.status == JobStatus.running and latest and latest.get("perf/sps"):
        eta = max(total - step, 0) / float(latest["perf/sps"])
    kinds = {a.kind for a in job.artifacts}
    return schemas.Job(
        id=job.id,
        name=job.name,
        tags=job.tag_names,
        priority=job.priority,
        group_id=job.group_id,
        study_id=job.study_id,
        status=job.status,  # type: ignore[arg-type]
        spec=job.spec,
        queue=job.queue,
        device=job.device,
        worker_host=job.worker_host,
        attempts=job.attempts,
        cancel_requested=job.cancel_requested,
        error=job.error,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        heartbeat_at=job.heartbeat_at,
        history=[schemas.StatusEvent(status=e.status, at=e.at, message=e.message) for e in job.events],  # type: ignore[arg-type]
        step=step,
        total_steps=total,
        progress=round(min(100.0, 100.0 * step / total), 2) if total else 0.0,
        eta_seconds=eta,
        resumed_from_step=job.resumed_from_step,
        parent_id=job.parent_id,
        forked_at_step=job.forked_at_step,
        latest_metrics=latest,
        points_written=job.points_written,
        mean_return=job.mean_return,
        best_return=job.best_return,
        final_score=scores.final,
        mmer=scores.mmer,
        eval_score=scores.eval,
        scores_partial=scores.partial,
        has_policy="policy" in kinds,
        artifacts=[
            schemas.ArtifactOut(kind=a.kind, step=a.step, size_bytes=a.size_bytes, created_at=a.created_at)  # type: ignore[arg-type]
            for a in job.artifacts
        ],
    )


def group_out(group: Group, jobs: list[Job], scores: dict[str, RunScores]) -> schemas.Group:
    """A group with its jobs (`scores` by job id) and per model variant the scores over its seeds."""
    per_model = [
        (model, [scores[j.id] for j in jobs if j.spec.get("model") == model]) for model in group.models
    ]
    return schemas.Group(
        id=group.id,
        name=group.name,
        spec=group.spec,
        seeds=group.seeds,
        models=group.models,
        created_at=group.created_at,
        jobs=[job_out(j, scores[j.id]) for j in jobs],
        scores=[
            schemas.GroupModelScores(
                model=model,
                jobs=len(runs),
                partial=any(r.partial for r in runs),
                scores=score_aggregates(runs),
            )
            for model, runs in per_model
        ],
    )
