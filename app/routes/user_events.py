"""`/api/events`: one Server-Sent Events stream with the changes of all the user's jobs.

What the jobs table and the compare page need to stay current without polling the API:

- `event: job`, data: the job (as `GET /api/jobs/{id}` answers) whenever its status
  changes (a new entry in its history) or, while it is queued or running, whenever its
  progress, latest metrics or cancel flag change (the worker writes them with each
  heartbeat).
- `event: points`, data `{"job_id", "last_step"}`: new metric points were stored for a
  running job, up to `last_step`. The compare page fetches the job's metrics on it.

Like the per-job stream, it reads the database (the source of truth) when the process's
hub says one of the user's jobs changed (app/hub.py). On connect it sends the current state of
every queued or running job; event ids are the id of the last status event seen, so a
reconnect with Last-Event-ID also gets, once, every job whose status changed meanwhile
(a Last-Event-ID that is not such an id is refused with 422). `?group=` restricts the
stream to one group's jobs, `?study=` to one study's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, TypeVar

from fastapi import APIRouter, Header, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse
from sqlalchemy import Select, func, select
from starlette.concurrency import run_in_threadpool

from app import schemas
from app.auth import UserDep
from app.db import session_scope
from app.deps import HubDep, SessionDep, SettingsDep, subscribe
from app.hub import SAFETY_SECONDS
from app.models import Group, Job, JobEvent, JobStatus, MetricPoint, Study
from app.schemas import EVENT_ID_MAX, error_responses
from app.services import job_out
from app.settings import Settings

router = APIRouter(prefix="/api", tags=["events"], responses=error_responses(401, 403, 404, 422))
COALESCE_SECONDS = 0.2
KEEPALIVE_SECONDS = 15.0
ACTIVE = (JobStatus.queued, JobStatus.running)

Signature = tuple[object, ...]
T = TypeVar("T")


@dataclass
class Watch:
    """What this stream has told its client so far."""

    user_id: int
    group_id: str | None
    study_id: str | None = None
    status_id: int = 0  # last status event sent (the event id)
    seen: dict[str, Signature] = field(default_factory=dict)  # active jobs: last state sent
    points: dict[str, int] = field(default_factory=dict)  # running jobs: last point step sent

    def _only(self, query: Select[tuple[T]]) -> Select[tuple[T]]:
        if self.group_id is not None:
            query = query.where(Job.group_id == self.group_id)
        return query if self.study_id is None else query.where(Job.study_id == self.study_id)

    def jobs(self) -> Select[tuple[Job]]:
        return self._only(select(Job).where(Job.user_id == self.user_id))

    def job_ids(self) -> Select[tuple[str]]:
        return self._only(select(Job.id).where(Job.user_id == self.user_id))


def _signature(job: Job) -> Signature:
    return (job.status, job.last_step, job.points_written, job.cancel_requested, job.heartbeat_at is None)


def _latest_status_id(settings: Settings, watch: Watch) -> int:
    with session_scope(settings.database_url) as session:
        return session.scalar(select(func.max(JobEvent.id)).where(JobEvent.job_id.in_(watch.job_ids()))) or 0


def _poll(settings: Settings, watch: Watch) -> list[tuple[str, str]]:
    """The (event, data) pairs that bring the client up to date; advances `watch`."""
    with session_scope(settings.database_url) as session:
        changed_rows = session.execute(
            select(JobEvent.id, JobEvent.job_id)
            .where(JobEvent.id > watch.status_id, JobEvent.job_id.in_(watch.job_ids()))
            .order_by(JobEvent.id)
        ).all()
        changed = dict.fromkeys(job_id for _, job_id in changed_rows)
        if changed_rows:
            watch.status_id = changed_rows[-1][0]
        active = session.scalars(watch.jobs().where(Job.status.in_(ACTIVE))).all()
        for job in active:
            if watch.seen.get(job.id) != _signature(job):
                changed.setdefault(job.id)
        # A job that left the active set finished: sent even if its status event's id was
        # committed out of order (PostgreSQL hands out ids before commit) and so skipped.
        active_ids = {job.id for job in active}
        for job_id in watch.seen.keys() - active_ids:
            changed.setdefault(job_id)
        running = [job.id for job in active if job.status == JobStatus.running]
        last_points = (
            dict(
                session.execute(
                    select(MetricPoint.job_id, func.max(MetricPoint.step))
                    .where(MetricPoint.job_id.in_(running))
                    .group_by(MetricPoint.job_id)
                ).all()
            )
            if running
            else {}
        )
        out: list[tuple[str, str]] = []
        jobs = session.scalars(select(Job).where(Job.id.in_(list(changed)))).all() if changed else []
        by_id = {job.id: job for job in jobs}
        for job_id in changed:
            job = by_id.get(job_id)
            if job is None:  # deleted meanwhile
                continue
            out.append(("job", job_out(job).model_dump_json()))
        for job_id, step in last_points.items():
            if step is not None and step > watch.points.get(job_id, -1):
                watch.points[job_id] = int(step)
                data = schemas.PointsEventData(job_id=job_id, last_step=int(step))
                out.append(("points", data.model_dump_json()))
        watch.seen = {job.id: _signature(job) for job in active}
        watch.points = {k: v for k, v in watch.points.items() if k in active_ids}
        return out


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "job and points events"},
        **error_responses(429, d429="The user has the most event streams open that one user may"),
    },
)
async def user_events(
    request: Request,
    user: UserDep,
    session: SessionDep,
    settings: SettingsDep,
    hub: HubDep,
    group: Annotated[str | None, Query(max_length=32, description="Only this group's jobs.")] = None,
    study: Annotated[str | None, Query(max_length=32, description="Only this study's jobs.")] = None,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            pattern="^[0-9]{0,18}$",  # an event id this stream sent: 64-bit integers hold it
            description="An event id this stream sent; without one, only the current state is sent.",
        ),
    ] = None,
) -> StreamingResponse:
    """Status, progress and new-point notices for all the user's jobs (or one group's or study's)."""
    for kind, model, wanted in (("group", Group, group), ("study", Study, study)):
        found = session.get(model, wanted) if wanted is not None and wanted.isalnum() else None
        if wanted is not None and (found is None or found.user_id != user.id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"{kind} {wanted} not found")
    session.close()  # the stream holds no session between reads
    watch = Watch(user.id, group, study)
    if last_event_id:
        watch.status_id = min(int(last_event_id), EVENT_ID_MAX)
    else:
        watch.status_id = await run_in_threadpool(_latest_status_id, settings, watch)
    subscription = subscribe(hub, user.id)

    async def stream() -> AsyncIterator[str]:
        try:
            yield "retry: 1000\n\n"
            last_sent = time.monotonic()
            while True:
                events = await run_in_threadpool(_poll, settings, watch)
                for event, data in events:
                    yield f"id: {watch.status_id}\nevent: {event}\ndata: {data}\n\n"
                    last_sent = time.monotonic()
                if await request.is_disconnected():
                    return
                if time.monotonic() - last_sent > KEEPALIVE_SECONDS:
                    yield ": keep-alive\n\n"
                    last_sent = time.monotonic()
                if not await subscription.wait(SAFETY_SECONDS):
                    return  # the server is stopping
                # Changes within COALESCE_SECONDS go out as one event per job (a job's
                # queued-then-running, a group's burst): one read, and the table's one refresh.
                await asyncio.sleep(COALESCE_SECONDS)
        finally:
            subscription.close()

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
