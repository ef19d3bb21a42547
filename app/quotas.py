"""Per-user limits of the shared service, checked before anything is stored.

A request too large by itself answers 422 naming the field; a user with too many jobs
queued or running answers 429. The worker uses `point_stride` to keep a job's metric
points under `Settings.max_points_per_job`.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import HTTPException, status
from fastapi.exceptions import RequestValidationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.models import Job, JobStatus, User
from app.settings import Settings
from rlcore.spec import TrainSpec

ACTIVE = (JobStatus.queued, JobStatus.running)


def updates_of(spec: TrainSpec) -> int:
    """Trainer updates the job makes: one metric point each before any thinning."""
    return math.ceil(spec.total_steps / (spec.num_envs * spec.rollout_length))


def checkpoints_of(spec: TrainSpec) -> int:
    """At most this many checkpoints, each of which may store one extra point (see worker/sink.py)."""
    if not spec.checkpoint_interval:
        return 0
    return min(updates_of(spec), math.ceil(spec.total_steps / spec.checkpoint_interval))


def point_stride(spec: TrainSpec, max_points: int) -> int:
    """Write one point per this many updates, so cadence + checkpoint + final points fit `max_points`."""
    budget = max(1, max_points - checkpoints_of(spec) - 1)
    return max(1, math.ceil(updates_of(spec) / budget))


def _error(loc: tuple[str | int, ...], message: str, value: Any) -> dict[str, Any]:
    return {"type": "quota", "loc": loc, "msg": message, "input": value}


def check_spec(settings: Settings, spec: TrainSpec, loc: tuple[str | int, ...] = ("body", "spec")) -> None:
    """422 when one job asks for more than a user may: too many steps or checkpoints."""
    errors = []
    if spec.total_steps > settings.max_total_steps:
        errors.append(
            _error(
                (*loc, "total_steps"),
                f"Input should be less than or equal to {settings.max_total_steps} "
                "(this service's limit per job, RLSERVE_MAX_TOTAL_STEPS)",
                spec.total_steps,
            )
        )
    # Each checkpoint may store a point; half the points budget is the most they may take.
    elif checkpoints_of(spec) > settings.max_points_per_job // 2:
        least = math.ceil(spec.total_steps / (settings.max_points_per_job // 2))
        errors.append(
            _error(
                (*loc, "checkpoint_interval"),
                f"Input should be 0 or at least {least}: this many steps would write "
                f"{checkpoints_of(spec)} checkpoints (at most {settings.max_points_per_job // 2})",
                spec.checkpoint_interval,
            )
        )
    if errors:
        raise RequestValidationError(errors)


def check_group_size(settings: Settings, seeds: int, models: int) -> None:
    """422 naming `seeds` when seeds x models is more jobs than one group may hold."""
    if seeds * models > settings.max_group_size:
        raise RequestValidationError(
            [
                _error(
                    ("body", "seeds"),
                    f"{seeds} seeds x {models} models = {seeds * models} jobs; a group holds at most "
                    f"{settings.max_group_size} (RLSERVE_MAX_GROUP_SIZE)",
                    seeds,
                )
            ]
        )


def check_study_size(settings: Settings, cells: int, seeds: int, loc: tuple[str | int, ...]) -> None:
    """422 at `loc` when cells x seeds is more jobs than a study may hold, or than the user may queue.

    A study queues all its jobs at once, so one larger than the active-jobs quota could
    never be accepted: it is refused as too large (422), not as "retry later" (429).
    """
    jobs = cells * seeds
    limits = [
        (settings.max_study_size, "a study holds at most {} (RLSERVE_MAX_STUDY_SIZE)"),
        (
            settings.max_active_jobs,
            "you may have at most {} queued or running at once (RLSERVE_MAX_ACTIVE_JOBS)",
        ),
    ]
    for limit, what in limits:
        if jobs > limit:
            message = f"{cells} cells x {seeds} seeds = {jobs} jobs; {what.format(limit)}"
            raise RequestValidationError([_error(loc, message, cells)])


def reserve_active_jobs(session: Session, settings: Settings, user_id: int, count: int) -> None:
    """429 unless the user may queue `count` more jobs; holds the user's row until the commit.

    The no-op UPDATE takes the user's row lock (PostgreSQL) or the write lock (SQLite)
    first, so two submissions by one user at once cannot both pass the count.
    """
    session.execute(
        update(User).where(User.id == user_id).values(id=User.id).execution_options(synchronize_session=False)
    )
    active = session.scalar(
        select(func.count()).select_from(Job).where(Job.user_id == user_id, Job.status.in_(ACTIVE))
    )
    active = int(active or 0)
    if active + count > settings.max_active_jobs:
        session.rollback()
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"you have {active} jobs queued or running and asked for {count} more; the limit is "
            f"{settings.max_active_jobs} per user: wait for some to finish or cancel them",
        )
