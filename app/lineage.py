"""Extending a finished job and forking a new job from another's checkpoint (see rlcore.lineage).

An extension re-queues the same job with a larger `total_steps`: the worker resumes it
from its checkpoint, so its curve goes on after the checkpoint's step, each step once.
A fork is a new job whose folder gets the parent's checkpoint with the changed spec
before its row is committed, so whichever worker claims it starts from that checkpoint.
"""

from __future__ import annotations

import shutil
from typing import Any

from fastapi import HTTPException, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app import schemas
from app.auth import CurrentUser
from app.job_states import record_status
from app.models import FINISHED, Job, JobStatus, new_id
from app.quotas import check_spec, reserve_active_jobs
from app.services import add_and_enqueue, new_job, send_tasks, spec_validation_error
from app.settings import Settings
from rlcore.lineage import KEPT, LineageError, fork_checkpoint, fork_errors, kept
from rlcore.spec import TrainSpec


def _field_errors(errors: list[LineageError], *loc: str) -> RequestValidationError:
    return RequestValidationError(
        [{"type": "lineage", "loc": (*loc, e.field), "msg": e.reason, "input": None} for e in errors]
    )


def _saved_spec(job: Job, *, check_memory: bool = True) -> TrainSpec:
    """The job's spec as stored; validated again, as the limits may have changed since."""
    try:
        return TrainSpec.from_saved(job.spec, check_memory=check_memory)
    except ValidationError as error:
        raise spec_validation_error(error, "spec") from None


def _checkpoint_step(settings: Settings, job_id: str) -> int | None:
    from rlcore.trainer import last_checkpoint_step  # torch: only when a request needs it

    return last_checkpoint_step(settings.job_dir(job_id))


def extend_job(session: Session, celery: Any, settings: Settings, job: Job, total_steps: int) -> Job:
    """Queue `job` again to train on to `total_steps` from its checkpoint.

    409 unless the job is finished (succeeded, failed or cancelled) and has a checkpoint;
    422 naming `total_steps` unless it is larger than the job's and within the limits;
    429 when the user's quota of active jobs is full.
    """
    if job.status not in FINISHED:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"job {job.id} is {job.status}; only a finished or cancelled job can be extended",
        )
    spec = _saved_spec(job)
    if total_steps <= spec.total_steps:
        raise _field_errors(
            [LineageError("total_steps", f"must be larger than the job's total_steps ({spec.total_steps})")],
            "body",
        )
    try:
        extended = TrainSpec.model_validate({**spec.model_dump(mode="json"), "total_steps": total_steps})
    except ValidationError as error:
        raise spec_validation_error(error, "body") from None
    check_spec(settings, extended, loc=("body",))
    if _checkpoint_step(settings, job.id) is None:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"job {job.id} has no checkpoint to continue from; retry it instead"
        )
    reserve_active_jobs(session, settings, job.user_id, 1)
    session.refresh(job)  # under the user's lock now: another request may have re-queued it
    if job.status not in FINISHED:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, f"job {job.id} is {job.status} already")
    job.spec = extended.model_dump(mode="json")
    job.attempts = 0  # a new run of the job: it gets its attempts afresh
    job.error, job.finished_at, job.cancel_requested = None, None, False
    record_status(session, job, JobStatus.queued, f"extended from {spec.total_steps} to {total_steps} steps")
    session.commit()
    send_tasks(session, celery, settings, [job])
    session.refresh(job)  # its history was loaded before the new event
    return job


def fork_spec(parent: TrainSpec, changes: dict[str, Any]) -> TrainSpec:
    """`parent` with `changes`; 422 naming each field a fork keeps, or that is invalid."""
    base = parent.model_dump(mode="json")
    # Before validation: a changed algo would otherwise be refused for the fields it ignores.
    refused = [kept(name) for name, value in changes.items() if name in KEPT and value != base.get(name)]
    if refused:
        raise _field_errors(refused, "body", "spec")
    try:
        return TrainSpec.model_validate({**base, **changes})
    except ValidationError as error:
        raise spec_validation_error(error, "body", "spec") from None


def fork_job(
    session: Session,
    celery: Any,
    settings: Settings,
    user: CurrentUser,
    parent: Job,
    payload: schemas.JobFork,
) -> Job:
    """A new queued job that starts from `parent`'s last checkpoint with the changed spec.

    422 naming the field for a change a fork cannot make; 409 when the parent has no
    checkpoint; 429 when the user's quota of active jobs is full.
    """
    parent_spec = _saved_spec(parent, check_memory=False)
    spec = fork_spec(parent_spec, payload.spec)
    check_spec(settings, spec)
    step = _checkpoint_step(settings, parent.id)
    if step is None:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"job {parent.id} ({parent.status}) has no checkpoint to fork from yet"
        )
    errors = fork_errors(parent_spec, spec, step)
    if errors:
        raise _field_errors(errors, "body", "spec")
    job = new_job(
        user,
        spec,
        settings,
        name=parent.name if payload.name is None else payload.name,
        tags=parent.tag_names if payload.tags is None else payload.tags,
        priority=parent.priority if payload.priority is None else payload.priority,
    )
    job.id = new_id()
    child_dir = settings.job_dir(job.id)
    try:
        # The checkpoint first: once the row is committed, any worker may claim the job.
        forked_at = fork_checkpoint(settings.job_dir(parent.id), child_dir, spec)
    except LineageError as error:  # a running parent checkpointed past total_steps just now
        shutil.rmtree(child_dir, ignore_errors=True)
        raise _field_errors([error], "body", "spec") from None
    if forked_at is None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"job {parent.id}'s checkpoint is gone")
    job.parent_id, job.forked_at_step, job.last_step = parent.id, forked_at, forked_at
    try:
        message = f"forked from {parent.id} at step {forked_at}"
        add_and_enqueue(session, celery, settings, [job], message=message)
    except HTTPException as error:
        if error.status_code != status.HTTP_503_SERVICE_UNAVAILABLE:  # 503: stored, as failed
            shutil.rmtree(child_dir, ignore_errors=True)
        raise
    return job
