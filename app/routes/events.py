"""`/api/jobs/{id}/events`: Server-Sent Events with status changes and new metric points.

The stream reads the database (the source of truth) when the process's hub says the
job changed (app/hub.py), so a reconnect needs nothing but the cursor in Last-Event-ID.
It ends when the job has finished and every point was sent, or when the server stops.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from app import schemas
from app.auth import UserDep
from app.db import session_scope
from app.deps import HubDep, SessionDep, SettingsDep, subscribe
from app.hub import SAFETY_SECONDS
from app.models import FINISHED, Job, JobEvent, MetricPoint
from app.schemas import EVENT_ID_MAX, error_responses
from app.services import get_owned_job, job_out
from app.settings import Settings

router = APIRouter(prefix="/api/jobs", tags=["events"], responses=error_responses(401, 403, 404, 422))
KEEPALIVE_SECONDS = 15.0
MAX_POINTS_PER_EVENT = 500


@dataclass
class Cursor:
    """What the client has: the last metric step and the last status event id."""

    step: int = -1
    status_id: int = 0

    def __str__(self) -> str:
        return f"{self.step}-{self.status_id}"

    # What __str__ makes; at most 18 digits each, so the database's 64-bit integers hold them.
    PATTERN = r"^((-1|[0-9]{1,18})-[0-9]{1,18})?$"

    @classmethod
    def parse(cls, value: str | None) -> Cursor:
        """A Last-Event-ID that matched PATTERN; none (or empty) starts from the beginning."""
        if not value:
            return cls()
        step, status_id = value.rsplit("-", 1)
        return cls(int(step), min(int(status_id), EVENT_ID_MAX))


@dataclass
class Batch:
    events: list[tuple[str, str, str]]  # (event name, id, data)
    finished: bool
    status: str
    more: bool = False  # a full page of points: more are stored


def _fetch(settings: Settings, job_id: str, cursor: Cursor) -> Batch:
    """New status events and points after `cursor`, as SSE events; advances the cursor."""
    with session_scope(settings.database_url) as session:
        # Read before the events and points: a job already finished here has all of its
        # events and points committed, so the stream can end after this batch.
        job = session.get(Job, job_id)
        if job is None:  # deleted while streaming
            return Batch([], True, "cancelled")
        status = job.status
        finished = status in FINISHED
        events = session.scalars(
            select(JobEvent)
            .where(JobEvent.job_id == job_id, JobEvent.id > cursor.status_id)
            .order_by(JobEvent.id)
        ).all()
        points = session.execute(
            select(MetricPoint.step, MetricPoint.values)
            .where(MetricPoint.job_id == job_id, MetricPoint.step > cursor.step)
            .order_by(MetricPoint.step)
            .limit(MAX_POINTS_PER_EVENT)
        ).all()
        # The job that status events carry is read again, after them: each statement sees
        # what is committed when it runs, so the first read may predate the last event
        # (a job read as queued, then its "running" event), and a client that shows the
        # snapshot would keep the older status until the next status change.
        snapshot = None
        if events:
            if session.get(Job, job_id, populate_existing=True) is None:  # deleted meanwhile
                return Batch([], True, "cancelled")
            snapshot = job_out(job)
        out: list[tuple[str, str, str]] = []
        # Transitions into queued/running go before the points, finishing ones after them,
        # so a client sees "succeeded" only after the job's last points.
        early = [e for e in events if e.status not in FINISHED]
        late = [e for e in events if e.status in FINISHED]
        for event in early:
            cursor.status_id = event.id
            out.append(_status_event(job_id, event, snapshot, cursor))
        if points:
            cursor.step = points[-1][0]
            data = schemas.MetricsEventData(
                job_id=job_id, points=[schemas.MetricPoint(step=s, metrics=v) for s, v in points]
            )
            out.append(("metrics", str(cursor), data.model_dump_json()))
        for event in late:
            cursor.status_id = event.id
            out.append(_status_event(job_id, event, snapshot, cursor))
        more_points = len(points) == MAX_POINTS_PER_EVENT
        return Batch(out, finished and not more_points, status, more_points)


def _status_event(
    job_id: str, event: JobEvent, snapshot: schemas.Job, cursor: Cursor
) -> tuple[str, str, str]:
    data = schemas.StatusEventData(
        job_id=job_id,
        status=event.status,
        at=event.at,
        message=event.message,
        job=snapshot,  # type: ignore[arg-type]
    )
    return ("status", str(cursor), data.model_dump_json())


def _format(event: str, event_id: str, data: str) -> str:
    return f"id: {event_id}\nevent: {event}\ndata: {data}\n\n"


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "status, metrics and end events"},
        **error_responses(429, d429="The user has the most event streams open that one user may"),
    },
)
async def job_events(
    job_id: str,
    request: Request,
    user: UserDep,
    session: SessionDep,
    settings: SettingsDep,
    hub: HubDep,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            pattern=Cursor.PATTERN,
            description="An event id this stream sent; anything else is 422.",
        ),
    ] = None,
) -> StreamingResponse:
    """Status changes and new metric points as they are written; see schemas.py for the shapes.

    Event ids are cursors ("<last step>-<last status event id>"): reconnecting with
    Last-Event-ID sends exactly what came after; a Last-Event-ID this stream did not make
    is refused with 422. `event: end` closes a finished job's stream;
    a stream cut by a server restart just ends, and EventSource reconnects with its cursor.
    """
    job = await run_in_threadpool(get_owned_job, session, user, job_id)
    job_key = job.id
    session.close()  # the stream holds no session between reads
    cursor = Cursor.parse(last_event_id)
    subscription = subscribe(hub, user.id, job_key)

    async def stream() -> AsyncIterator[str]:
        try:
            yield "retry: 1000\n\n"
            last_sent = time.monotonic()
            while True:
                batch = await run_in_threadpool(_fetch, settings, job_key, cursor)
                for event, event_id, data in batch.events:
                    yield _format(event, event_id, data)
                    last_sent = time.monotonic()
                if batch.finished:
                    end = schemas.EndEventData(job_id=job_key, status=batch.status)  # type: ignore[arg-type]
                    yield _format("end", str(cursor), end.model_dump_json())
                    return
                if await request.is_disconnected():
                    return
                if time.monotonic() - last_sent > KEEPALIVE_SECONDS:
                    yield ": keep-alive\n\n"
                    last_sent = time.monotonic()
                # A full batch means more points are waiting: read on without waiting.
                if not batch.more and not await subscription.wait(SAFETY_SECONDS):
                    return  # the server is stopping
        finally:
            subscription.close()

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
