"""The metrics sink the trainer writes to, and the thread that moves its points to the database.

The trainer's `log` only appends to a list under a lock (microseconds); a monitor thread
writes the points in batches every `flush_interval`, beats the job's heartbeat, and reads
the cancel flag, so neither the database nor the cancel check sits in the training loop.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from app.db import session_scope
from app.settings import Settings
from worker.lifecycle import Claim, heartbeat, insert_points
from worker.shutdown import SHUTDOWN

log = logging.getLogger(__name__)


class BufferedSink:
    """A `rlcore.metrics.MetricsSink` that buffers points for the monitor to write.

    `log` only appends under a lock; the monitor thread writes the buffer every
    `flush_interval`. The trainer calls `flush` before every checkpoint: a run resumed
    from that checkpoint does not report the points before it again, so they must be in
    the database before the checkpoint exists, and `flush` writes them synchronously.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer: list[tuple[int, dict[str, float]]] = []
        self.last_step: int | None = None
        self.latest: dict[str, float] | None = None
        self.flush_now: Callable[[], None] | None = None

    def log(self, step: int, metrics: dict[str, float]) -> None:
        # JSON (and PostgreSQL's json type) has no NaN or infinity: leave such values out.
        values = {k: float(v) for k, v in metrics.items() if math.isfinite(float(v))}
        with self._lock:
            self._buffer.append((int(step), values))
            self.last_step = int(step)
            self.latest = values

    def flush(self) -> None:
        """Write every buffered point to the database now (the trainer is about to checkpoint)."""
        if self.flush_now is not None:
            self.flush_now()

    def drain(self) -> list[tuple[int, dict[str, float]]]:
        with self._lock:
            points, self._buffer = self._buffer, []
        return points


class JobMonitor(threading.Thread):
    """Flushes points, beats the heartbeat and watches for cancel while a job trains."""

    def __init__(
        self, settings: Settings, claim: Claim, sink: BufferedSink, flush_interval: float = 0.25
    ) -> None:
        super().__init__(name=f"rlserve-monitor-{claim.job_id}", daemon=True)
        self.settings = settings
        self.claim = claim
        self.sink = sink
        self.flush_interval = flush_interval
        self.cancel = threading.Event()
        self.lost = threading.Event()  # another attempt owns the job now: stop, write nothing
        self._done = threading.Event()
        # One flush at a time, so points reach the database in step order (the event
        # stream's cursor relies on it) whichever thread flushes.
        self._flush_lock = threading.Lock()
        sink.flush_now = self.flush

    def should_stop(self) -> bool:
        """The trainer's stop callback: a cheap flag read, no database query."""
        return self.cancel.is_set() or self.lost.is_set() or SHUTDOWN.is_set()

    def flush(self) -> None:
        """Write buffered points now."""
        with self._flush_lock:
            points = self.sink.drain()
            if points and not self.lost.is_set():
                with session_scope(self.settings.database_url) as session:
                    insert_points(session, self.claim.job_id, points)

    def beat(self) -> None:
        with session_scope(self.settings.database_url) as session:
            owner, cancel = heartbeat(session, self.claim, self.sink.last_step, self.sink.latest)
        if not owner:
            log.warning("job %s: attempt %d no longer owns the job; stopping", *self._ids())
            self.lost.set()
        elif cancel:
            self.cancel.set()

    def _ids(self) -> tuple[str, int]:
        return self.claim.job_id, self.claim.attempt

    def run(self) -> None:
        next_beat = 0.0
        while not self._done.wait(self.flush_interval):
            try:
                self.flush()
                if time.monotonic() >= next_beat:
                    self.beat()
                    next_beat = time.monotonic() + self.settings.heartbeat_interval
            except Exception:  # a database hiccup must not kill the job; retry next round
                log.exception("job %s: monitor round failed", self.claim.job_id)

    def stop(self) -> None:
        """Stop the thread and write what is left, with a last heartbeat."""
        self._done.set()
        self.join()
        self.flush()
        self.beat()
