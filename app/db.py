"""Engine, sessions and migrations.

SQLite gets WAL and a busy timeout so the API and the worker can share the file;
migrations run at start under a lock so an API and a worker starting together do not
both try to create the tables.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same for every rlserve process.
_PG_MIGRATION_LOCK = 0x726C7365


def _sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///"))
    return None


@functools.cache
def get_engine(url: str) -> Engine:
    """One engine per database URL per process."""
    _KNOWN_URLS.add(url)
    sqlite = _sqlite_path(url)
    if sqlite is not None:
        sqlite.parent.mkdir(parents=True, exist_ok=True)
        # As many pooled connections as the API's thread pool runs requests at once: an
        # overflow connection is closed on return, and opening one runs the pragmas below.
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=20, max_overflow=20
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            # WAL lets the API read while the worker writes metric points.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


@functools.cache
def get_sessionmaker(url: str) -> sessionmaker[Session]:
    return sessionmaker(get_engine(url), expire_on_commit=False)


@contextlib.contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = get_sessionmaker(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def upgrade(url: str, revision: str = "head") -> None:
    """Apply the Alembic migrations up to `revision` (head), once, whoever starts first."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine_url"] = url
    sqlite = _sqlite_path(url)
    if sqlite is not None:
        sqlite.parent.mkdir(parents=True, exist_ok=True)
        lock_path = sqlite.with_name(sqlite.name + ".migrate-lock")
        with lock_path.open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            command.upgrade(config, revision)
        return
    engine = get_engine(url)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        try:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
            connection.commit()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK})
            connection.commit()


def ping(url: str) -> None:
    """Raise unless the database answers."""
    with get_engine(url).connect() as connection:
        connection.execute(text("SELECT 1"))


def forget_engines() -> None:
    """Drop engines inherited over fork without closing the parent's connections.

    A forked Celery pool child must not use (or close) its parent's pooled sockets.
    """
    for url in list(_engine_urls()):
        get_engine(url).dispose(close=False)
    get_engine.cache_clear()
    get_sessionmaker.cache_clear()


def _engine_urls() -> list[str]:
    # functools.cache keeps its keys private; track them through the sessionmaker cache's peer.
    return list(_KNOWN_URLS)


_KNOWN_URLS: set[str] = set()
