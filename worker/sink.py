"""The metrics sink the trainer writes to, and the thread that moves its points to the database.

The trainer's `log` only appends to a list under a lock (microseconds); a monitor thread
writes the points in batches every `flush_interval`, beats the job's heartbeat, and reads
the cancel flag, so neither the database nor the cancel check sits in the training loop.

A job with more updates than `Settings.max_points_per_job` stores one point per `stride`
updates (`Thinner`): each stored point sums up the updates since the one before, so
every finished episode's return is still in the curve.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from statistics import fmean

from app.db import session_scope
from app.settings import Settings
from worker.attempt import Claim, heartbeat, insert_points
from worker.shutdown import SHUTDOWN

log = logging.getLogger(__name__)


Point = tuple[int, dict[str, float]]

# How `Thinner` merges the updates it folds into one point; other keys are averaged.
EPISODES = "charts/episodes"
PER_EPISODE = ("charts/episodic_return", "charts/episodic_length")  # weighted by episodes
LATEST = ("perf/wall_time", "charts/learning_rate")  # a clock and a schedule: the last value
LATEST_PREFIXES = ("eval/",)  # an evaluation is a measurement at one step, not a rate


def merge(points: list[Point]) -> Point:
    """One point standing for `points`: at the last one's step, every episode counted."""
    step = points[-1][0]
    keys = dict.fromkeys(k for _, values in points for k in values)
    merged: dict[str, float] = {}
    for key in keys:
        present = [values for _, values in points if key in values]
        if key == EPISODES:
            merged[key] = sum(v[key] for v in present)
        elif key in PER_EPISODE:
            weights = [v.get(EPISODES, 1.0) for v in present]
            merged[key] = sum(v[key] * w for v, w in zip(present, weights, strict=True)) / sum(weights)
        elif key in LATEST or key.startswith(LATEST_PREFIXES):
            merged[key] = present[-1][key]
        else:
            merged[key] = fmean(v[key] for v in present)
    return step, merged


class Thinner:
    """Keeps one point per `stride` updates' worth of steps, plus the last, the others folded in.

    A point is stored when the step crosses a multiple of `stride * batch` (an update may
    take more than `batch` steps: REINFORCE collects whole episodes), or at the end. This
    depends only on the steps, so a run resumed from a checkpoint (`start_step`) stores
    the same steps. `take` returns what is folded so far as one point: called before a
    checkpoint, so the updates before it are stored even if the run resumes from it.
    """

    def __init__(self, stride: int = 1, batch: int = 1, total_steps: int = 0, start_step: int = 0) -> None:
        self.stride, self.total_steps = stride, total_steps
        self.interval = stride * batch  # env steps between stored points
        self._previous = start_step
        self._pending: list[Point] = []

    def add(self, step: int, values: dict[str, float]) -> Point | None:
        """The point to store now, if this update crossed a multiple of `interval`."""
        if self.stride == 1:
            return step, values
        self._pending.append((step, values))
        crossed = step // self.interval > self._previous // self.interval
        self._previous = step
        if crossed or step >= self.total_steps:
            return self.take()
        return None

    def take(self) -> Point | None:
        """What is folded so far, as one point (None when nothing is)."""
        if not self._pending:
            return None
        point, self._pending = merge(self._pending), []
        return point


class BufferedSink:
    """A `rlcore.metrics.MetricsSink` that buffers points for the monitor to write.

    `log` only appends under a lock; the monitor thread writes the buffer every
    `flush_interval`. The trainer calls `flush` before every checkpoint: a run resumed
    from that checkpoint does not report the points before it again, so they must be in
    the database before the checkpoint exists, and `flush` writes them synchronously.
    """

    def __init__(self, thinner: Thinner | None = None) -> None:
        self._lock = threading.Lock()
        self._buffer: list[Point] = []
        self.thinner = thinner or Thinner()
        self.last_step: int | None = None  # the progress shown: every update, stored or not
        self.latest: dict[str, float] | None = None
        self.flush_now: Callable[[], None] | None = None

    def log(self, step: int, metrics: dict[str, float]) -> None:
        # JSON (and PostgreSQL's json type) has no NaN or infinity: leave such values out.
        values = {k: float(v) for k, v in metrics.items() if math.isfinite(float(v))}
        with self._lock:
            point = self.thinner.add(int(step), values)
            if point is not None:
                self._buffer.append(point)
            self.last_step = int(step)
            self.latest = values

    def flush(self) -> None:
        """Write every buffered point to the database now (the trainer is about to checkpoint)."""
        with self._lock:
            point = self.thinner.take()
            if point is not None:
                self._buffer.append(point)
        if self.flush_now is not None:
            self.flush_now()

    def drain(self) -> list[Point]:
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
                    insert_points(session, self.claim.job_id, points, self.claim.user_id or None)

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
