"""The API's cache of decoded metric points: served per version, extended as a job's points arrive."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
from sqlalchemy import Engine, event

from app.db import get_engine, session_scope
from app.metrics_series import (
    CachedTable,
    SeriesCache,
    SeriesTable,
    decode_rows,
    fetch_rows,
    job_table,
    series_json,
)
from app.models import Job
from tests.conftest import Stack
from worker.attempt import insert_points


def test_cache_serves_a_table_only_for_its_version() -> None:
    cache = SeriesCache(max_bytes=1_000)
    table = decode_rows([1, 2], ['{"a": 1}', '{"a": 2}'])
    cache.put("job", CachedTable(1, (2, 2), table))
    assert cache.get("job") == CachedTable(1, (2, 2), table) and cache.get("other") is None
    cache.remember(table, "a", 0, series_json(table, "a", 0))
    assert series_json(table, "a", 0) == ('{"steps":[1,2],"values":[1.0,2.0]}', False)
    for i in range(100):  # over the byte budget: the least recently used go first
        cache.put(f"job{i}", CachedTable(1, (2, 2), decode_rows([1, 2], ['{"a": 1}', '{"a": 2}'])))
    assert cache.get("job") is None and cache.get("job99") is not None


def assert_same_table(got: SeriesTable, want: SeriesTable) -> None:
    np.testing.assert_array_equal(got.row_steps, want.row_steps)
    assert sorted(got.series) == sorted(want.series)
    for key, (steps, values) in want.series.items():
        np.testing.assert_array_equal(got.series[key][0], steps, err_msg=key)
        np.testing.assert_array_equal(got.series[key][1], values, err_msg=key)


@contextlib.contextmanager
def statements_on(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements the engine runs inside the block."""
    statements: list[str] = []

    def record(conn, cursor, statement: str, *rest) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_a_jobs_table_grows_with_its_points_and_equals_a_fresh_read(stack: Stack) -> None:
    job_id = stack.wait_finished(stack.submit()["id"])["id"]
    engine = get_engine(stack.settings.database_url)
    with session_scope(stack.settings.database_url) as session:
        job = session.get(Job, job_id)
        first = job_table(session, job)
        assert len(first.row_steps) == job.points_written > 1
        with statements_on(engine) as statements:
            assert job_table(session, job) is first  # nothing new: served from memory...
        assert statements == []  # ...without a query

        # Points that arrive after the cached ones (one with a key no row had) extend it.
        last = int(first.row_steps[-1])
        insert_points(
            session, job_id, [(last + 5, {"charts/episodic_return": 7.0}), (last + 9, {"test/added": 3.0})]
        )
        session.refresh(job)
        grown = job_table(session, job)
        assert grown.row_steps.tolist() == [*first.row_steps.tolist(), last + 5, last + 9]
        assert_same_table(grown, decode_rows(*fetch_rows(session, job_id)))

        # A point below the cached ones (no writer does that): the table is read again whole.
        below = int(first.row_steps[0]) - 1
        insert_points(session, job_id, [(below, {"charts/episodic_return": 1.0})])
        session.refresh(job)
        reread = job_table(session, job)
        assert reread.row_steps[0] == below
        assert_same_table(reread, decode_rows(*fetch_rows(session, job_id)))

    # The API serves what was added.
    served = stack.client().get(f"/api/jobs/{job_id}/metrics", params={"keys": "test/added"})
    assert served.json()["series"]["test/added"] == {"steps": [last + 9], "values": [3.0]}
