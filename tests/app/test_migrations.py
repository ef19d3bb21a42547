"""Migrations on SQLite and PostgreSQL keep the rows: 0003 drops `artifacts.relpath`, 0004 adds studies
and job scores, 0005 job lineage, 0006 replays, 0008 the points version."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text
from sqlalchemy.orm import Session

from app.db import MIGRATIONS, get_engine, session_scope, upgrade
from app.models import utcnow
from tests.conftest import _create_pg_database


def _upgrade_to_head(url: str) -> None:
    """Upgrade, then drop pooled connections: later reads must see the new schema, not a cached one."""
    upgrade(url)
    get_engine(url).dispose()


def _downgrade(url: str, revision: str) -> None:
    """Downgrade with no pooled connection open across it: later reads must see the old schema."""
    get_engine(url).dispose()
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine_url"] = url
    command.downgrade(config, revision)
    get_engine(url).dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database on each backend, for a migration to start from."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    url, drop = _create_pg_database()
    try:
        yield url
    finally:
        drop()


def _add_user(session: Session, now: datetime) -> None:
    session.execute(text("INSERT INTO users (id, name, created_at) VALUES (1, 'old', :t)"), {"t": now})


def _add_job(session: Session, now: datetime, job_id: str, points_written: int, **extra: object) -> None:
    """A finished job of user 1, with the columns every revision has and `extra` ones of later revisions."""
    columns = ["id", "points_written", *extra]
    names, params = ", ".join(columns), ", ".join(f":{c}" for c in columns)
    session.execute(
        text(
            "INSERT INTO jobs (user_id, priority, spec, status, queue, cancel_requested, attempts,"
            f" created_at, last_step, {names})"
            f" VALUES (1, 0, '{{}}', 'succeeded', 'cpu', false, 1, :t, 10, {params})"
        ),
        {"t": now, "id": job_id, "points_written": points_written, **extra},
    )


def _columns(url: str) -> set[str]:
    return {c["name"] for c in inspect(get_engine(url)).get_columns("artifacts")}


def test_migration_0003_drops_relpath_and_keeps_artifacts(url: str) -> None:
    upgrade(url, "0002")
    now = utcnow()
    with session_scope(url) as session:
        _add_user(session, now)
        _add_job(session, now, "j1", points_written=0)
        session.execute(
            text(
                "INSERT INTO artifacts (job_id, kind, relpath, step, size_bytes, created_at)"
                " VALUES ('j1', 'best_policy', 'best/policy.safetensors', 10, 123, :t)"
            ),
            {"t": now},
        )
    _upgrade_to_head(url)
    assert "relpath" not in _columns(url)
    with session_scope(url) as session:
        rows = session.execute(text("SELECT job_id, kind, step, size_bytes FROM artifacts")).all()
    assert [tuple(r) for r in rows] == [("j1", "best_policy", 10, 123)]

    _downgrade(url, "0002")
    with session_scope(url) as session:
        relpaths = session.execute(text("SELECT relpath FROM artifacts")).scalars().all()
    assert relpaths == ["best/policy.safetensors"]


def _job_columns(url: str) -> set[str]:
    return {c["name"] for c in inspect(get_engine(url)).get_columns("jobs")}


def test_migration_0004_adds_studies_and_job_scores_keeping_jobs(url: str) -> None:
    upgrade(url, "0003")
    now = utcnow()
    with session_scope(url) as session:
        _add_user(session, now)
        _add_job(session, now, "j1", points_written=0, mean_return=42.5)
    _upgrade_to_head(url)
    assert {"study_id", "cell_id", "final_score", "mmer", "eval_score"} <= _job_columns(url)
    tables = set(inspect(get_engine(url)).get_table_names())
    assert {"studies", "study_cells"} <= tables
    with session_scope(url) as session:
        row = session.execute(text("SELECT id, mean_return, study_id, final_score FROM jobs")).one()
    assert tuple(row) == ("j1", 42.5, None, None)

    _downgrade(url, "0003")
    assert "study_id" not in _job_columns(url)
    assert "studies" not in set(inspect(get_engine(url)).get_table_names())
    with session_scope(url) as session:
        assert session.execute(text("SELECT mean_return FROM jobs")).scalar_one() == 42.5


def test_migration_0005_adds_job_lineage_and_keeps_every_row(url: str) -> None:
    upgrade(url, "0004")
    now = utcnow()
    with session_scope(url) as session:
        _add_user(session, now)
        _add_job(session, now, "p1", points_written=1)
        session.execute(
            text(
                "INSERT INTO metric_points (job_id, step, \"values\", created_at) VALUES ('p1', 10, '{}', :t)"
            ),
            {"t": now},
        )
    _upgrade_to_head(url)
    columns = _job_columns(url)
    assert {"parent_id", "forked_at_step"} <= columns
    with session_scope(url) as session:
        # Copying the table (SQLite) cascaded nothing: the old job's points are all there.
        assert session.execute(text("SELECT job_id, step FROM metric_points")).all() == [("p1", 10)]
        _add_job(session, now, "c1", points_written=1, parent_id="p1", forked_at_step=10)
    with session_scope(url) as session:
        session.execute(text("DELETE FROM metric_points WHERE job_id = 'p1'"))
        session.execute(text("DELETE FROM jobs WHERE id = 'p1'"))
    with session_scope(url) as session:
        # The fork outlives its parent, keeping the step it started from.
        row = session.execute(text("SELECT id, parent_id, forked_at_step FROM jobs")).one()
    assert tuple(row) == ("c1", None, 10)

    _downgrade(url, "0004")
    columns = _job_columns(url)
    assert not {"parent_id", "forked_at_step"} & columns
    with session_scope(url) as session:
        assert session.execute(text("SELECT id FROM jobs")).scalars().all() == ["c1"]


def test_migration_0006_adds_replays_that_go_with_their_job(url: str) -> None:
    upgrade(url, "0005")
    now = utcnow()
    with session_scope(url) as session:
        _add_user(session, now)
        _add_job(session, now, "j1", points_written=1)
    _upgrade_to_head(url)
    with session_scope(url) as session:
        session.execute(
            text(
                "INSERT INTO replays (id, job_id, user_id, kind, status, params, created_at)"
                " VALUES ('r1', 'j1', 1, 'replay', 'ready', '{}', :t)"
            ),
            {"t": now},
        )
    with session_scope(url) as session:
        session.execute(text("DELETE FROM jobs WHERE id = 'j1'"))
    with session_scope(url) as session:
        assert session.execute(text("SELECT count(*) FROM replays")).scalar() == 0

    _downgrade(url, "0005")
    assert "replays" not in inspect(get_engine(url)).get_table_names()


def test_migration_0008_adds_points_version_at_zero_keeping_jobs(url: str) -> None:
    upgrade(url, "0007")
    now = utcnow()
    with session_scope(url) as session:
        _add_user(session, now)
        _add_job(session, now, "j1", points_written=3)
    _upgrade_to_head(url)
    with session_scope(url) as session:
        row = session.execute(text("SELECT points_written, points_version FROM jobs WHERE id = 'j1'")).one()
    assert tuple(row) == (3, 0)

    _downgrade(url, "0007")
    assert "points_version" not in _job_columns(url)
