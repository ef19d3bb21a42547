"""A job's metric points as numpy arrays per key, decoded once, and a cache for finished jobs.

`GET /api/jobs/{id}/metrics` used to let SQLAlchemy `json.loads` every row and then walk all
rows once per key in Python. Here the rows' JSON text is read as is and decoded in a single
`json.loads` of one joined array; each key becomes a (steps, values) pair of arrays, which
`minmax_indices` downsamples and `series_json` serialises.

A job's decoded table (and the JSON of the series already served from it) is kept in an
in-process LRU with the job row's `points_version`, which every insert of points bumps: while
it is unchanged, the table is served without a query. After an insert, the count and highest
step of the job's stored points (one index-only query) tell whether the new points only come
after the cached ones. Points are only ever added after the highest step stored (a resumed
attempt sends again points that are already there, which are ignored), so while a job trains
its cached table is extended by the rows after its last step instead of being read again:
twenty dashboards polling a running job decode each point once.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import Text, cast, func, select
from sqlalchemy.orm import Session

from app.downsample import minmax_indices
from app.models import Job, MetricPoint

_EMPTY_STEPS = np.zeros(0, dtype=np.int64)
_EMPTY_VALUES = np.zeros(0, dtype=np.float64)


def dumps(obj: object) -> str:
    """JSON as FastAPI's JSONResponse writes it (compact, UTF-8, no NaN)."""
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


@dataclass
class SeriesTable:
    """Rows in step order: every row's step, and per key the steps and values of the rows that have it."""

    row_steps: np.ndarray
    series: dict[str, tuple[np.ndarray, np.ndarray]]
    # JSON of (key, max_points) series already served from this table (cached tables only).
    fragments: OrderedDict[tuple[str, int], tuple[str, bool]] = field(default_factory=OrderedDict)

    @property
    def nbytes(self) -> int:
        arrays = self.row_steps.nbytes + sum(s.nbytes + v.nbytes for s, v in self.series.values())
        return arrays + sum(len(text) for text, _ in self.fragments.values())

    def keys_after(self, since_step: int | None) -> list[str]:
        """Sorted keys that some row after `since_step` has."""
        if since_step is None:
            return sorted(k for k, (s, _) in self.series.items() if len(s))
        return sorted(k for k, (s, _) in self.series.items() if len(s) and s[-1] > since_step)

    def after(self, since_step: int | None) -> SeriesTable:
        """The rows with a step above `since_step` (a view, no copy)."""
        if since_step is None:
            return self
        cut = int(np.searchsorted(self.row_steps, since_step, side="right"))
        series = {}
        for key, (steps, values) in self.series.items():
            i = int(np.searchsorted(steps, since_step, side="right"))
            series[key] = (steps[i:], values[i:])
        return SeriesTable(self.row_steps[cut:], series)


def decode_rows(steps: list[int], texts: list[str], keys: list[str] | None = None) -> SeriesTable:
    """Build the table from rows' steps and JSON texts (objects of key -> number), in step order.

    `keys`: only these keys (default every key found). Values go through `float()`, as before.
    """
    dicts = json.loads("[" + ",".join(texts) + "]") if texts else []
    if keys is None:
        found: dict[str, None] = {}
        for values in dicts:
            found.update(dict.fromkeys(values))
        keys = list(found)
    n = len(dicts)
    series: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for key in keys:
        vals = [values.get(key) for values in dicts]
        present = [v is not None for v in vals]
        if all(present):
            key_steps = np.asarray(steps, dtype=np.int64)
        else:
            key_steps = np.asarray([s for s, p in zip(steps, present, strict=True) if p], dtype=np.int64)
            vals = [v for v in vals if v is not None]
        key_values = np.fromiter(map(float, vals), dtype=np.float64, count=len(vals))
        series[key] = (key_steps if len(key_steps) else _EMPTY_STEPS, key_values)
    row_steps = np.asarray(steps, dtype=np.int64) if n else _EMPTY_STEPS
    return SeriesTable(row_steps, series)


def fetch_rows(session: Session, job_id: str, since_step: int | None = None) -> tuple[list[int], list[str]]:
    """The job's points after `since_step`, in step order: steps and the JSON text of their values."""
    query = select(MetricPoint.step, cast(MetricPoint.values, Text)).where(MetricPoint.job_id == job_id)
    if since_step is not None:
        query = query.where(MetricPoint.step > since_step)
    rows = session.execute(query.order_by(MetricPoint.step)).all()
    if not rows:
        return [], []
    steps, texts = zip(*rows, strict=True)
    return list(steps), list(texts)


def series_json(table: SeriesTable, key: str, max_points: int) -> tuple[str, bool]:
    """`{"steps":[...],"values":[...]}` of one key, min/max-downsampled; and whether it was thinned.

    Memoised on tables held by the cache (the full series of a finished job).
    """
    memo = table.fragments
    hit = memo.get((key, max_points))
    if hit is not None:
        memo.move_to_end((key, max_points))
        return hit
    steps, values = table.series.get(key, (_EMPTY_STEPS, _EMPTY_VALUES))
    idx = minmax_indices(values, max_points)
    thinned = len(idx) < len(steps)
    if thinned:
        steps, values = steps[idx], values[idx]
    text = '{"steps":' + dumps(steps.tolist()) + ',"values":' + dumps(values.tolist()) + "}"
    return text, thinned


# (count, highest step) of a job's stored points.
Version = tuple[int, int | None]


@dataclass(frozen=True)
class CachedTable:
    """A job's table with the row's points_version and the points' Version it was read at."""

    points_version: int
    version: Version
    table: SeriesTable


class SeriesCache:
    """Jobs' tables with the versions they were read at, least recently used first out, within `max_bytes`."""

    def __init__(self, max_bytes: int = 128 * 1024 * 1024, max_fragments: int = 64) -> None:
        self.max_bytes = max_bytes
        self.max_fragments = max_fragments
        self._lock = threading.Lock()
        self._tables: OrderedDict[str, CachedTable] = OrderedDict()

    def get(self, job_id: str) -> CachedTable | None:
        with self._lock:
            hit = self._tables.get(job_id)
            if hit is not None:
                self._tables.move_to_end(job_id)
            return hit

    def put(self, job_id: str, cached: CachedTable) -> None:
        if cached.table.nbytes > self.max_bytes // 4:
            return
        with self._lock:
            self._tables[job_id] = cached
            self._tables.move_to_end(job_id)
            self._shrink()

    def remember(self, table: SeriesTable, key: str, max_points: int, fragment: tuple[str, bool]) -> None:
        """Keep a served series' JSON with its cached table."""
        with self._lock:
            table.fragments[(key, max_points)] = fragment
            while len(table.fragments) > self.max_fragments:
                table.fragments.popitem(last=False)
            self._shrink()

    def clear(self) -> None:
        with self._lock:
            self._tables.clear()

    def _shrink(self) -> None:
        total = sum(c.table.nbytes for c in self._tables.values())
        while total > self.max_bytes and self._tables:
            _, cached = self._tables.popitem(last=False)
            total -= cached.table.nbytes


CACHE = SeriesCache()


def stored_version(session: Session, job_id: str) -> Version:
    """(count, highest step) of the job's stored points: a cached table is current if they match."""
    count, last = session.execute(
        select(func.count(), func.max(MetricPoint.step)).where(MetricPoint.job_id == job_id)
    ).one()
    return int(count), None if last is None else int(last)


def job_table(session: Session, job: Job) -> SeriesTable:
    """The job's whole table: cached while its points are unchanged, extended while it trains.

    A cached table read at the row's `points_version` is served without a query; after an
    insert, (count, highest step) of the stored points say whether the new points only
    extend it.
    """
    hit = CACHE.get(job.id)
    if hit is not None and hit.points_version == job.points_version:
        return hit.table
    stored = stored_version(session, job.id)
    if hit is not None and hit.version == stored:
        CACHE.put(job.id, CachedTable(job.points_version, stored, hit.table))
        return hit.table
    table = None
    if hit is not None and hit.version[1] is not None and hit.version[0] <= stored[0]:
        table = extended(hit.table, decode_rows(*fetch_rows(session, job.id, since_step=hit.version[1])))
        if len(table.row_steps) < stored[0]:  # a point landed below the cached ones: read it all again
            table = None
    if table is None:
        table = decode_rows(*fetch_rows(session, job.id))
    # The version of what was read, so a point stored in between shows as a change next time;
    # read after the row, it is at least as new as the row's points_version.
    last = int(table.row_steps[-1]) if len(table.row_steps) else None
    CACHE.put(job.id, CachedTable(job.points_version, (len(table.row_steps), last), table))
    return table


def extended(table: SeriesTable, more: SeriesTable) -> SeriesTable:
    """`table` followed by `more`, whose rows all come after its own."""
    if not len(more.row_steps):
        return table
    empty = (_EMPTY_STEPS, _EMPTY_VALUES)
    series = {}
    for key in dict.fromkeys([*table.series, *more.series]):
        (steps, values), (more_steps, more_values) = table.series.get(key, empty), more.series.get(key, empty)
        series[key] = (np.concatenate([steps, more_steps]), np.concatenate([values, more_values]))
    return SeriesTable(np.concatenate([table.row_steps, more.row_steps]), series)
