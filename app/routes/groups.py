"""`/api/groups`: one spec over several seeds and model variants, to compare."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy import func, select

from app import schemas
from app.auth import UserDep
from app.deps import CeleryDep, SessionDep, SettingsDep
from app.models import Group, Job
from app.quotas import check_group_size, check_spec
from app.run_scores import scores_for
from app.schemas import DB_INT_MAX, error_responses
from app.services import add_and_enqueue, group_out, new_job
from rlcore.spec import TrainSpec

router = APIRouter(prefix="/api/groups", tags=["groups"], responses=error_responses(401, 403, 422))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.Group,
    responses=error_responses(400, 413, 429, 503),
)
def create_group(
    payload: schemas.GroupCreate, user: UserDep, session: SessionDep, settings: SettingsDep, celery: CeleryDep
) -> schemas.Group:
    """One job per (model, seed): e.g. models [mlp, gru, lstm] x seeds [0, 1, 2] makes 9 jobs."""
    base = payload.spec.model_dump(mode="json")
    models = [m.value for m in payload.models] if payload.models else [payload.spec.model.value]
    check_group_size(settings, len(payload.seeds), len(models))
    check_spec(settings, payload.spec)
    specs: list[TrainSpec] = []
    for model in models:
        for seed in payload.seeds:
            try:
                specs.append(TrainSpec.model_validate({**base, "model": model, "seed": seed}))
            except ValidationError as error:
                raise RequestValidationError(
                    [
                        {**e, "loc": ("body", "spec", *e["loc"]), "msg": f"with model {model}: {e['msg']}"}
                        for e in error.errors(include_url=False, include_context=False)
                    ]
                ) from None
    group = Group(user_id=user.id, name=payload.name, spec=base, seeds=list(payload.seeds), models=models)
    session.add(group)
    session.flush()
    jobs = [
        new_job(
            user,
            spec,
            settings,
            name=_job_name(payload.name or "group", spec),
            tags=payload.tags,
            priority=payload.priority,
            group_id=group.id,
        )
        for spec in specs
    ]
    add_and_enqueue(session, celery, settings, jobs, message=f"submitted in group {group.id}")
    return group_out(group, jobs, scores_for(session, jobs))


def _job_name(label: str, spec: TrainSpec) -> str:
    """ "<group name> <model> seed <seed>", the group name cut so that it fits a name's 200 characters."""
    suffix = f" {spec.model.value} seed {spec.seed}"
    return label[: 200 - len(suffix)] + suffix


def _jobs_of(session: SessionDep, group_id: str) -> list[Job]:
    return list(session.scalars(select(Job).where(Job.group_id == group_id).order_by(Job.created_at, Job.id)))


@router.get("", response_model=schemas.GroupList)
def list_groups(
    user: UserDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    offset: Annotated[int, Query(ge=0, le=DB_INT_MAX)] = 0,
) -> schemas.GroupList:
    """The user's groups with their jobs, newest first."""
    query = select(Group).where(Group.user_id == user.id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    groups = session.scalars(
        query.order_by(Group.created_at.desc(), Group.id).limit(limit).offset(offset)
    ).all()
    return schemas.GroupList(
        items=[_group_view(session, g) for g in groups], total=total, limit=limit, offset=offset
    )


@router.get("/{group_id}", response_model=schemas.Group, responses=error_responses(404))
def get_group(group_id: str, user: UserDep, session: SessionDep) -> schemas.Group:
    group = session.get(Group, group_id) if group_id.isalnum() and len(group_id) <= 32 else None
    if group is None or group.user_id != user.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"group {group_id} not found")
    return _group_view(session, group)


def _group_view(session: SessionDep, group: Group) -> schemas.Group:
    """The group with its jobs; unfinished jobs scored from their points so far."""
    jobs = _jobs_of(session, group.id)
    return group_out(group, jobs, scores_for(session, jobs))
