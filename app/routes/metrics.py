"""`/api/jobs/{id}/metrics`: a job's curves, downsampled, or CSV."""

from __future__ import annotations

import csv
import io
from enum import StrEnum
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query, Response

from app import schemas
from app.auth import UserDep
from app.deps import SessionDep
from app.downsample import minmax_indices
from app.metrics_series import CACHE, SeriesTable, decode_rows, dumps, fetch_rows, job_table, series_json
from app.schemas import DB_INT_MAX, error_responses
from app.services import get_owned_job

router = APIRouter(prefix="/api/jobs", tags=["metrics"], responses=error_responses(401, 403, 404, 422))
DEFAULT_MAX_POINTS = 1000


class MetricsFormat(StrEnum):
    json = "json"
    csv = "csv"


@router.get(
    "/{job_id}/metrics",
    response_model=schemas.MetricsOut,
    responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with ?format=csv"}},
)
def get_metrics(
    job_id: str,
    user: UserDep,
    session: SessionDep,
    keys: Annotated[
        str | None, Query(description="Comma-separated metric keys; default all.", max_length=4000)
    ] = None,
    since_step: Annotated[
        int | None, Query(ge=-1, le=DB_INT_MAX, description="Only points after this step.")
    ] = None,
    max_points: Annotated[
        int | None,
        Query(
            ge=0,
            le=1_000_000,
            description=f"Per key; 0 = every point. Default {DEFAULT_MAX_POINTS} for JSON, all for CSV.",
        ),
    ] = None,
    format: Annotated[MetricsFormat, Query()] = MetricsFormat.json,
) -> schemas.MetricsOut | Response:
    """A job's curves. Downsampling keeps each bucket's min and max, so spikes stay visible."""
    job = get_owned_job(session, user, job_id, relations=False)
    if max_points is None:
        max_points = 0 if format == MetricsFormat.csv else DEFAULT_MAX_POINTS
    wanted = [k for k in (keys or "").split(",") if k]

    if format == MetricsFormat.csv:
        steps, texts = fetch_rows(session, job.id, since_step)
        table = decode_rows(steps, texts, wanted or None)
        return _csv(job.id, table, wanted or table.keys_after(None), max_points)

    # Decoded once per process and extended as points arrive (app/metrics_series.py).
    table = job_table(session, job).after(since_step)
    wanted = wanted or table.keys_after(None)
    parts: list[str] = []
    downsampled = False
    for key in dict.fromkeys(wanted):
        fragment = series_json(table, key, max_points)
        if since_step is None:  # the cached table itself: keep the JSON for the next reader
            CACHE.remember(table, key, max_points, fragment)
        downsampled |= fragment[1]
        parts.append(dumps(key) + ":" + fragment[0])
    total = len(table.row_steps)
    # Built here rather than through response_model: validating and serialising 90k floats
    # with pydantic cost more than the rest of the request. The shape is schemas.MetricsOut.
    body = (
        f'{{"job_id":{dumps(job.id)},"keys":{dumps(wanted)},"total_points":{total},'
        f'"downsampled":{dumps(downsampled)},'
        f'"last_step":{int(table.row_steps[-1]) if total else "null"},'
        f'"series":{{{",".join(parts)}}}}}'
    )
    return Response(body.encode(), media_type="application/json")


def _csv(job_id: str, table: SeriesTable, keys: list[str], max_points: int) -> Response:
    row_steps = table.row_steps
    kept = np.arange(len(row_steps))
    if max_points and len(row_steps) > max_points:
        # Thin rows by one reference key's min/max buckets (the first key), keeping whole rows;
        # rows without that key count as 0.0.
        reference = np.zeros(len(row_steps))
        if keys and keys[0] in table.series:
            steps, values = table.series[keys[0]]
            reference[np.searchsorted(row_steps, steps)] = values
        kept = minmax_indices(reference, max_points)
    columns = []
    for key in keys:
        steps, values = table.series.get(key, (row_steps[:0], np.zeros(0)))
        column = [""] * len(row_steps)
        for i, v in zip(np.searchsorted(row_steps, steps).tolist(), values.tolist(), strict=True):
            column[i] = repr(v)
        columns.append(column)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["step", *keys])
    steps_list = row_steps.tolist()
    writer.writerows([steps_list[i], *(c[i] for c in columns)] for i in kept.tolist())
    return Response(
        buffer.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="job-{job_id}-metrics.csv"'},
    )
