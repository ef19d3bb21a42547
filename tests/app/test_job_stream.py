"""The per-job event stream reads the database in several statements; what a status
change committed between two of them does to the batch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from app.db import get_engine, session_scope
from app.job_states import record_status
from app.models import Job, JobStatus, User
from app.routes.events import Cursor, _fetch
from app.settings import Settings
from app.tokens import create_token
from tests.conftest import TINY_SPEC, backend_settings, start_job


@pytest.fixture(params=["embedded", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    with backend_settings(request.param, tmp_path) as settings:
        yield settings


def _queued_job(settings: Settings) -> str:
    """A job row with its `queued` event, as the API stores one."""
    with session_scope(settings.database_url) as session:
        create_token(session, "alice", "tests")
        user = session.scalars(select(User).where(User.name == "alice")).one()
        job = Job(user_id=user.id, spec=TINY_SPEC, queue="cpu", status=JobStatus.queued)
        session.add(job)
        session.flush()
        record_status(session, job, JobStatus.queued, "submitted")
        return job.id


def test_status_events_carry_the_job_as_of_their_last_event(settings: Settings) -> None:
    # The job page shows the job that status events carry. A worker that started the job
    # just after the stream read it (and before it read the events) made the page show
    # "queued" beside a growing curve until the job finished.
    job_id = _queued_job(settings)
    engine = get_engine(settings.database_url)
    started: list[str] = []

    def start_after_the_first_job_read(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not started and statement.lstrip().startswith("SELECT") and "FROM jobs" in statement:
            started.append(statement)
            start_job(settings, job_id)  # a worker's claim, injected on purpose: the race made certain

    event.listen(engine, "after_cursor_execute", start_after_the_first_job_read)
    try:
        batch = _fetch(settings, job_id, Cursor())
    finally:
        event.remove(engine, "after_cursor_execute", start_after_the_first_job_read)

    assert started, "the stream never read the job"
    statuses = [json.loads(data) for name, _, data in batch.events if name == "status"]
    assert [s["status"] for s in statuses] == ["queued", "running"]
    assert {s["job"]["status"] for s in statuses} == {"running"}
    assert not batch.finished
