"""`/api/jobs/{id}/replays` and `/api/replays/{id}`: episodes and memory probes of a job's policies."""

from __future__ import annotations

import json

from fastapi import APIRouter, HTTPException, Response, status
from fastapi.exceptions import RequestValidationError
from sqlalchemy import select

from app.auth import UserDep
from app.deps import CeleryDep, SessionDep, SettingsDep
from app.models import Replay, ReplayStatus, utcnow
from app.queue import enqueue_replay
from app.replays import (
    ReplayCreate,
    ReplayList,
    ReplayOut,
    check_policy,
    get_owned_replay,
    hidden_names,
    replay_files,
    replay_out,
    reserve_replay,
)
from app.schemas import error_responses
from app.services import get_owned_job
from rlcore.frames import VIDEO_MEDIA_TYPE

router = APIRouter(tags=["replays"], responses=error_responses(401, 403, 404, 422))


@router.post(
    "/api/jobs/{job_id}/replays",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ReplayOut,
    responses=error_responses(400, 409, 413, 429, 503, d409="The job has no policy of that kind yet"),
)
def create_replay(
    job_id: str,
    payload: ReplayCreate,
    user: UserDep,
    session: SessionDep,
    settings: SettingsDep,
    celery: CeleryDep,
) -> ReplayOut:
    """Queue an episode of the job's policy (`kind` replay) or a probe of its memory (`probe`).

    It runs on the worker, on the job's queue; poll `GET /api/replays/{id}` until `status`
    is ready (or failed, with `error`). A probe needs an env that hides part of its state.
    """
    job = get_owned_job(session, user, job_id)
    if payload.kind == "probe" and hidden_names(job.spec) == ():
        raise RequestValidationError(
            [
                {
                    "loc": ("body", "kind"),
                    "msg": f"the job's env ({job.spec.get('env_id')}) hides nothing to probe",
                    "type": "value_error",
                    "input": payload.kind,
                }
            ]
        )
    check_policy(settings, job, payload.policy)
    reserve_replay(session, settings, user.id)
    replay = Replay(job_id=job.id, user_id=user.id, kind=payload.kind, params=payload.params())
    session.add(replay)
    session.commit()  # before the task: a worker must find the row it is sent
    try:
        enqueue_replay(celery, settings, replay.id, job.queue)
    except Exception as error:
        replay.status, replay.finished_at = ReplayStatus.failed, utcnow()
        replay.error = f"could not reach the task queue: {type(error).__name__}: {error}"
        session.commit()
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, replay.error) from None
    return replay_out(settings, replay)


@router.get("/api/jobs/{job_id}/replays", response_model=ReplayList)
def list_replays(job_id: str, user: UserDep, session: SessionDep, settings: SettingsDep) -> ReplayList:
    """The job's replays and probes, newest first, without their data."""
    job = get_owned_job(session, user, job_id)
    rows = session.scalars(
        select(Replay).where(Replay.job_id == job.id).order_by(Replay.created_at.desc(), Replay.id)
    ).all()
    return ReplayList(items=[replay_out(settings, r) for r in rows])


@router.get("/api/replays/{replay_id}", response_model=ReplayOut)
def get_replay(replay_id: str, user: UserDep, session: SessionDep, settings: SettingsDep) -> ReplayOut:
    """The replay or probe; when ready, `data` holds what it recorded (see the README)."""
    replay = get_owned_replay(session, user.id, replay_id)
    data = None
    if replay.status == ReplayStatus.ready:
        path, _ = replay_files(settings, replay)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"replay {replay.id}: its data is gone") from None
    return replay_out(settings, replay, data)


@router.get(
    "/api/replays/{replay_id}/video",
    response_class=Response,
    responses={
        200: {"content": {VIDEO_MEDIA_TYPE: {}}, "description": "H.264 MP4, a frame per step"},
        **error_responses(409, d409="Not ready, or a probe (which has no video)"),
    },
)
def get_replay_video(replay_id: str, user: UserDep, session: SessionDep, settings: SettingsDep) -> Response:
    """The replay's video (one frame per step); fetch it with the token header."""
    replay = get_owned_replay(session, user.id, replay_id)
    if replay.kind != "replay" or replay.status != ReplayStatus.ready:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"replay {replay.id} ({replay.kind}, {replay.status}) has no video"
        )
    _, path = replay_files(settings, replay)
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"replay {replay.id}: its video is gone") from None
    return Response(content, media_type=VIDEO_MEDIA_TYPE)
