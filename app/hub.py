"""One feed of job changes per API process, fanned out to every open event stream.

Streams (`/api/jobs/{id}/events`, `/api/events`) do not poll the database on their own:
they wait on a `Subscription` that the `Hub` wakes when something of theirs changed, and
only then read what their client has not seen (the cursor logic stays in the routes, so
Last-Event-ID resumes exactly as before). Where the changes come from:

- PostgreSQL: the API and the workers NOTIFY on commit (`app.job_states.announce`); the
  hub LISTENs on one connection of its own (`PgListener`) and wakes the streams at once.
- Both: `ChangeFeed` asks the database once per `poll_seconds` (every 0.1 s on SQLite,
  1 s as a safety net on PostgreSQL) for new status events, new points and changed
  active jobs, whatever the number of streams.

A stream also re-reads every `SAFETY_SECONDS` on its own, which covers a change the feed
saw late (PostgreSQL hands out ids before commit) or a notification lost with its connection.

The hub caps open streams per user, and closing it (on SIGTERM, see app/main.py) ends
every stream, so the server can exit while clients are connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

from sqlalchemy import func, make_url, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.db import session_scope
from app.job_states import CHANGES_CHANNEL
from app.models import Job, JobEvent, JobStatus, MetricPoint

log = logging.getLogger("rlserve.hub")
ACTIVE = (JobStatus.queued, JobStatus.running)
SAFETY_SECONDS = 2.0

Signature = tuple[object, ...]


class TooManyStreams(Exception):
    """The user already has the most event streams open that one user may."""


@dataclass
class Changes:
    """Jobs that changed since the last poll, and their owners."""

    jobs: set[str] = field(default_factory=set)
    users: set[int] = field(default_factory=set)


class ChangeFeed:
    """What changed in the database since the last call: new events and points, active jobs."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.event_id = 0
        self.point_id = 0
        self.active: dict[str, Signature] = {}  # job id -> (user id, status, progress...)

    def prime(self) -> None:
        """Start from now: what happened before is every stream's first read."""
        with session_scope(self.database_url) as session:
            self.event_id = session.scalar(select(func.max(JobEvent.id))) or 0
            self.point_id = session.scalar(select(func.max(MetricPoint.id))) or 0
            self.active = self._active(session)

    def poll(self) -> Changes:
        """The jobs (and their users) with something new since the last poll."""
        with session_scope(self.database_url) as session:
            events = session.execute(
                select(JobEvent.id, JobEvent.job_id, Job.user_id)
                .join(Job, Job.id == JobEvent.job_id)
                .where(JobEvent.id > self.event_id)
            ).all()
            points = session.execute(
                select(func.max(MetricPoint.id), MetricPoint.job_id)
                .where(MetricPoint.id > self.point_id)
                .group_by(MetricPoint.job_id)
            ).all()
            active = self._active(session)
        changes = Changes()
        owners = {job_id: sig[0] for job_id, sig in (self.active | active).items()}
        for event_id, job_id, user_id in events:
            self.event_id = max(self.event_id, event_id)
            changes.jobs.add(job_id)
            changes.users.add(user_id)
        for point_id, job_id in points:
            self.point_id = max(self.point_id, point_id)
            changes.jobs.add(job_id)
        for job_id in active.keys() | self.active.keys():
            if active.get(job_id) != self.active.get(job_id):
                changes.jobs.add(job_id)
        changes.users.update(owners[j] for j in changes.jobs if j in owners)  # type: ignore[misc]
        self.active = active
        return changes

    @staticmethod
    def _active(session: Session) -> dict[str, Signature]:
        rows = session.execute(
            select(
                Job.id,
                Job.user_id,
                Job.status,
                Job.last_step,
                Job.points_written,
                Job.cancel_requested,
                Job.heartbeat_at.is_(None),
            ).where(Job.status.in_(ACTIVE))
        ).all()
        return {row[0]: tuple(row[1:]) for row in rows}


class PgListener(threading.Thread):
    """LISTENs for the jobs' NOTIFYs on a connection of its own; hands each batch to `deliver`."""

    def __init__(self, database_url: str, deliver: Callable[[list[str]], None]) -> None:
        super().__init__(name="rlserve-hub-listener", daemon=True)
        url = make_url(database_url).set(drivername="postgresql")
        self.conninfo = url.render_as_string(hide_password=False)
        self.deliver = deliver
        self.stopping = threading.Event()
        self.listening = threading.Event()

    def run(self) -> None:
        import psycopg

        while not self.stopping.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True) as connection:
                    connection.execute(f"LISTEN {CHANGES_CHANNEL}")
                    self.listening.set()
                    while not self.stopping.is_set():
                        # Each notification as it comes; the timeout only re-checks `stopping`.
                        for notification in connection.notifies(timeout=0.5):
                            self.deliver([notification.payload])
            except Exception:  # the database went away: polling covers it until we are back
                self.listening.clear()
                log.exception("hub listener lost its connection; reconnecting")
                self.stopping.wait(1.0)


@dataclass(eq=False)
class Subscription:
    """One open stream: woken by the hub when its job (or any of its user's jobs) changed."""

    hub: Hub
    user_id: int
    job_id: str | None  # None: all the user's jobs
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait(self, timeout: float) -> bool:
        """Until a change of this stream's (or `timeout`); False once the hub is closing."""
        if not self.hub.closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout)
        self.wake.clear()
        return not self.hub.closing

    def close(self) -> None:
        self.hub.unsubscribe(self)


class Hub:
    """The process's change feed and its subscribers; `start` in the lifespan, `close` on shutdown."""

    def __init__(
        self, database_url: str, max_streams_per_user: int, poll_seconds: float | None = None
    ) -> None:
        self.feed = ChangeFeed(database_url)
        self.max_streams_per_user = max_streams_per_user
        postgres = make_url(database_url).get_backend_name() == "postgresql"
        self.poll_seconds = poll_seconds if poll_seconds is not None else (1.0 if postgres else 0.1)
        self.listener: PgListener | None = PgListener(database_url, self._notified) if postgres else None
        self.closing = False
        self._subscriptions: set[Subscription] = set()
        self._per_user: Counter[int] = Counter()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def subscribe(self, user_id: int, job_id: str | None = None) -> Subscription:
        """A new stream's subscription; TooManyStreams when the user has the most open."""
        if self._per_user[user_id] >= self.max_streams_per_user:
            raise TooManyStreams(
                f"{self._per_user[user_id]} event streams already open; at most "
                f"{self.max_streams_per_user} per user: close one first"
            )
        subscription = Subscription(self, user_id, job_id)
        self._subscriptions.add(subscription)
        self._per_user[user_id] += 1
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)
            self._per_user[subscription.user_id] -= 1

    def streams_of(self, user_id: int) -> int:
        return self._per_user[user_id]

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run())
        if self.listener is not None:
            self.listener.start()

    def close(self) -> None:
        """End every stream (at its next wake-up, which this is) and refuse new ones' waits."""
        self.closing = True
        self.wake_all()

    def wake_all(self) -> None:
        for subscription in list(self._subscriptions):
            subscription.wake.set()

    async def stop(self) -> None:
        self.close()
        if self.listener is not None:
            self.listener.stopping.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _notified(self, payloads: list[str]) -> None:
        """The listener thread's NOTIFY payloads ("<job id> [<user id>]"), to dispatch on the loop."""
        changes = Changes()
        for payload in payloads:
            job_id, _, user = payload.partition(" ")
            changes.jobs.add(job_id)
            if user.isdigit():
                changes.users.add(int(user))
            elif job_id in self.feed.active:  # a running job's points: its owner from the last poll
                changes.users.add(int(self.feed.active[job_id][0]))  # type: ignore[call-overload]
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                self._loop.call_soon_threadsafe(self.dispatch, changes)

    def dispatch(self, changes: Changes) -> None:
        for subscription in self._subscriptions:
            if (subscription.job_id is None and subscription.user_id in changes.users) or (
                subscription.job_id in changes.jobs
            ):
                subscription.wake.set()

    async def _run(self) -> None:
        primed = False
        while not self.closing:
            try:
                if not self._subscriptions:
                    primed = False  # nobody listens: no queries; start afresh on the next stream
                elif not primed:
                    await run_in_threadpool(self.feed.prime)
                    primed = True
                    self.wake_all()  # a change between a stream's first read and the prime
                else:
                    self.dispatch(await run_in_threadpool(self.feed.poll))
            except Exception:  # a database hiccup: streams still re-read on their own
                log.exception("change feed poll failed")
                primed = False
            await asyncio.sleep(self.poll_seconds)


def close_on_signals(hub: Hub) -> Callable[[], None]:
    """Close `hub` on SIGTERM/SIGINT, then let the previous handler (uvicorn's) run; returns an undo.

    uvicorn, asked to stop, waits for open connections to finish before the lifespan's
    shutdown runs, and an event stream never finishes by itself: so the streams must be
    told at the signal. Only the main thread can set handlers (not a test's server thread).
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous: dict[int, object] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            loop.call_soon_threadsafe(hub.close)
        old = previous.get(signum)
        if callable(old):
            old(signum, frame)
        elif old == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.getsignal(sig)
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, old in previous.items():
            if signal.getsignal(sig) is handler:
                signal.signal(sig, old)  # type: ignore[arg-type]

    return restore
