"""`/api/jobs`: submit, list, inspect, cancel, retry, extend, fork, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Response, status
from pydantic import Field, ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app import lineage, schemas
from app.auth import UserDep
from app.deps import CeleryDep, SessionDep, SettingsDep
from app.models import FINISHED, Job, JobStatus, JobTag
from app.quotas import check_spec
from app.run_scores import scores_for
from app.schemas import DB_INT_MAX, TAG_CHARS, error_responses
from app.services import (
    add_and_enqueue,
    delete_jobs,
    get_owned_job,
    job_out,
    new_job,
    request_cancel,
    request_hash,
    spec_validation_error,
)

router = APIRouter(prefix="/api/jobs", tags=["jobs"], responses=error_responses(401, 403, 422))
_NAMES = "|".join(s.value for s in JobStatus)
# One or more status names, comma-separated (spaces and empty items allowed): "queued, running".
STATUS_PATTERN = rf"^ *({_NAMES})? *(, *({_NAMES})? *)*$"

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="A retried POST with the same key returns the job the first one made.",
    ),
]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.Job,
    responses={
        200: {"model": schemas.Job, "description": "Replay of a request with the same Idempotency-Key"},
        **error_responses(400, 409, 413, 429, 503, d409="Idempotency-Key used for another request"),
    },
)
def create_job(
    payload: schemas.JobCreate,
    user: UserDep,
    session: SessionDep,
    settings: SettingsDep,
    celery: CeleryDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> schemas.Job:
    """Queue a training job. The spec's fields left out take their algorithm's defaults."""
    check_spec(settings, payload.spec)
    digest = request_hash(payload.model_dump(mode="json"))
    if idempotency_key:
        earlier = _by_idempotency_key(session, user.id, idempotency_key, digest)
        if earlier is not None:
            response.status_code = status.HTTP_200_OK
            return job_out(earlier)
    job = new_job(
        user, payload.spec, settings, name=payload.name, tags=payload.tags, priority=payload.priority
    )
    job.idempotency_key, job.request_hash = idempotency_key, digest
    try:
        add_and_enqueue(session, celery, settings, [job])
    except IntegrityError:
        # Two requests with one key at the same time: the other one won; answer with its job.
        session.rollback()
        earlier = _by_idempotency_key(session, user.id, idempotency_key or "", digest)
        if earlier is None:
            raise
        response.status_code = status.HTTP_200_OK
        return job_out(earlier)
    return job_out(job)


def _by_idempotency_key(session: SessionDep, user_id: int, key: str, digest: str) -> Job | None:
    earlier = session.scalar(select(Job).where(Job.user_id == user_id, Job.idempotency_key == key))
    if earlier is not None and earlier.request_hash != digest:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            "Idempotency-Key was already used for a different request; use a new key",
        )
    return earlier


@router.get("", response_model=schemas.JobList)
def list_jobs(
    user: UserDep,
    session: SessionDep,
    status_: Annotated[
        list[Annotated[str, Field(pattern=STATUS_PATTERN)]] | None,
        Query(alias="status", description="Repeat or comma-separate to match several."),
    ] = None,
    group: Annotated[str | None, Query(max_length=32, pattern="^[0-9A-Za-z]*$")] = None,
    study: Annotated[str | None, Query(max_length=32, pattern="^[0-9A-Za-z]*$")] = None,
    tag: Annotated[str | None, Query(max_length=100, pattern=rf"^{TAG_CHARS}*$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=DB_INT_MAX)] = 0,
) -> schemas.JobList:
    """The user's jobs, newest first."""
    query = select(Job).where(Job.user_id == user.id)
    wanted = {s.strip() for value in status_ or () for s in value.split(",") if s.strip()}
    if wanted:  # the pattern lets through only known names
        query = query.where(Job.status.in_(wanted))
    if group:
        query = query.where(Job.group_id == group)
    if study:
        query = query.where(Job.study_id == study)
    if tag:
        query = query.where(Job.id.in_(select(JobTag.job_id).where(JobTag.tag == tag)))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    jobs = session.scalars(query.order_by(Job.created_at.desc(), Job.id).limit(limit).offset(offset)).all()
    return schemas.JobList(items=[job_out(j) for j in jobs], total=total, limit=limit, offset=offset)


@router.get("/{job_id}", response_model=schemas.Job, responses=error_responses(404))
def get_job(job_id: str, user: UserDep, session: SessionDep) -> schemas.Job:
    """Spec, status with its history, progress, ETA, latest metrics, scores, worker and device.

    An unfinished job's scores are computed from its points so far (`scores_partial`).
    """
    job = get_owned_job(session, user, job_id)
    return job_out(job, scores_for(session, [job])[job.id])


@router.post(
    "/{job_id}/cancel",
    response_model=schemas.Job,
    responses=error_responses(404, 409, d409="The job already succeeded or failed"),
)
def cancel_job(job_id: str, user: UserDep, session: SessionDep) -> schemas.Job:
    """A queued job is cancelled at once; a running one stops within seconds, keeping its checkpoint.

    Cancelling a finished job is a no-op for cancelled jobs and 409 for the others.
    """
    job = get_owned_job(session, user, job_id)
    if request_cancel(session, job):
        session.commit()
        return job_out(job)
    raise HTTPException(status.HTTP_409_CONFLICT, f"job {job.id} already {job.status}")


@router.post(
    "/{job_id}/retry",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.Job,
    responses=error_responses(404, 409, 429, 503, d409="The job is queued or running"),
)
def retry_job(
    job_id: str, user: UserDep, session: SessionDep, settings: SettingsDep, celery: CeleryDep
) -> schemas.Job:
    """A new job with the same spec, name, tags, priority and group; 409 unless the job is finished."""
    from rlcore.spec import TrainSpec

    old = get_owned_job(session, user, job_id)
    if old.status not in FINISHED:
        # A queued or running job is still on its way: a retry would run it twice.
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"job {old.id} is {old.status}; only a finished job can be retried"
        )
    try:
        # Validated again: the limits (e.g. RLSERVE_MAX_JOB_MEMORY) may have changed since.
        spec = TrainSpec.from_saved(old.spec)
    except ValidationError as error:
        raise spec_validation_error(error, "spec") from None
    check_spec(settings, spec)
    job = new_job(
        user, spec, settings, name=old.name, tags=old.tag_names, priority=old.priority, group_id=old.group_id
    )
    add_and_enqueue(session, celery, settings, [job], message=f"retry of {old.id}")
    return job_out(job)


@router.post(
    "/{job_id}/extend",
    response_model=schemas.Job,
    responses=error_responses(
        400, 404, 409, 413, 429, 503, d409="The job is queued or running, or has no checkpoint"
    ),
)
def extend_job(
    job_id: str,
    payload: schemas.JobExtend,
    user: UserDep,
    session: SessionDep,
    settings: SettingsDep,
    celery: CeleryDep,
) -> schemas.Job:
    """Train a finished or cancelled job on to a larger `total_steps`, from its checkpoint.

    The same job, queued again: its curve goes on after the checkpoint's step, each step
    once. With `anneal_lr` the schedule runs towards zero at the new total.
    """
    job = get_owned_job(session, user, job_id)
    return job_out(lineage.extend_job(session, celery, settings, job, payload.total_steps))


@router.post(
    "/{job_id}/fork",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.Job,
    responses=error_responses(400, 404, 409, 413, 429, 503, d409="The job has no checkpoint yet"),
)
def fork_job(
    job_id: str,
    payload: schemas.JobFork,
    user: UserDep,
    session: SessionDep,
    settings: SettingsDep,
    celery: CeleryDep,
) -> schemas.Job:
    """A new job that starts from this job's last checkpoint, with some spec fields changed.

    It keeps the parent's weights, optimizer state, environments and step, and links to
    it (`parent_id`, `forked_at_step`). Fields that the checkpoint depends on (the model,
    its sizes, the env and its options, seed, num_envs, algo) cannot change: 422 naming them.
    """
    parent = get_owned_job(session, user, job_id)
    return job_out(lineage.fork_job(session, celery, settings, user, parent, payload))


@router.delete(
    "/{job_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(404, 409, d409="The job is queued or running; cancel it first"),
)
def delete_job(job_id: str, user: UserDep, session: SessionDep, settings: SettingsDep) -> Response:
    """Delete a finished job with its metric points and files; 409 while it is queued or running."""
    job = get_owned_job(session, user, job_id)
    if job.status not in FINISHED:
        raise HTTPException(status.HTTP_409_CONFLICT, f"job {job.id} is {job.status}; cancel it first")
    delete_jobs(session, settings, [job])
    return Response(status_code=status.HTTP_204_NO_CONTENT)
