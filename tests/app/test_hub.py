"""The change hub: PostgreSQL NOTIFY wakes exactly the streams of the job that changed."""

from __future__ import annotations

import asyncio

from app.db import get_sessionmaker, session_scope, upgrade
from app.hub import Hub
from app.job_states import announce
from tests.conftest import _create_pg_database

WAIT = 30.0  # a bound for a broken hub, not a speed target


def test_postgres_notify_wakes_the_job_and_user_streams_without_polling() -> None:
    url, drop = _create_pg_database()
    try:
        upgrade(url)
        asyncio.run(_notify_scenario(url))
    finally:
        drop()


async def _notify_scenario(url: str) -> None:
    hub = Hub(url, max_streams_per_user=10, poll_seconds=3600)  # no polling in this test
    await hub.start()
    try:
        assert hub.listener is not None
        assert await asyncio.to_thread(hub.listener.listening.wait, WAIT)
        job_stream = hub.subscribe(7, "a" * 32)
        user_stream = hub.subscribe(7)
        other_job = hub.subscribe(7, "b" * 32)
        other_user = hub.subscribe(8)

        def change() -> None:
            with session_scope(url) as session:
                announce(session, "a" * 32, 7)

        def rolled_back() -> None:
            with get_sessionmaker(url)() as session:
                announce(session, "b" * 32, 8)
                session.rollback()  # a NOTIFY is sent only on commit

        await asyncio.to_thread(rolled_back)
        await asyncio.to_thread(change)
        await asyncio.wait_for(job_stream.wake.wait(), WAIT)
        await asyncio.wait_for(user_stream.wake.wait(), WAIT)
        # Delivered in commit order: "a" came after the rolled-back "b", which never came.
        assert not other_job.wake.is_set() and not other_user.wake.is_set()

        hub.close()  # what SIGTERM does: every stream's wait ends, reporting the close
        assert await other_user.wait(WAIT) is False
    finally:
        await hub.stop()
