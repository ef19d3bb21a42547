"""`/api/jobs/{id}/metrics` (downsampled curves, or CSV) and `/api/jobs/{id}/policy` (downloads)."""

from __future__ import annotations

import csv
import io
import zipfile
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from sqlalchemy import select

from app import schemas
from app.auth import UserDep
from app.checkpoint_policy import export_from_checkpoint
from app.deps import SessionDep, SettingsDep
from app.downsample import minmax_downsample
from app.models import JobStatus, MetricPoint
from app.services import get_owned_job

router = APIRouter(prefix="/api/jobs", tags=["metrics"])
DEFAULT_MAX_POINTS = 1000


class MetricsFormat(StrEnum):
    json = "json"
    csv = "csv"


class PolicyFormat(StrEnum):
    safetensors = "safetensors"
    onnx = "onnx"


class PolicyWhich(StrEnum):
    final = "final"
    best = "best"


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
    since_step: Annotated[int | None, Query(ge=-1, description="Only points after this step.")] = None,
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
    job = get_owned_job(session, user, job_id)
    query = select(MetricPoint.step, MetricPoint.values).where(MetricPoint.job_id == job.id)
    if since_step is not None:
        query = query.where(MetricPoint.step > since_step)
    rows = session.execute(query.order_by(MetricPoint.step)).all()
    wanted = [k for k in (keys or "").split(",") if k] or sorted({k for _, values in rows for k in values})
    if max_points is None:
        max_points = 0 if format == MetricsFormat.csv else DEFAULT_MAX_POINTS

    if format == MetricsFormat.csv:
        return _csv(job.id, rows, wanted, max_points)

    series: dict[str, schemas.Series] = {}
    downsampled = False
    for key in wanted:
        steps = [step for step, values in rows if key in values]
        vals = [float(values[key]) for _, values in rows if key in values]
        kept_steps, kept_values = minmax_downsample(steps, vals, max_points)
        downsampled |= len(kept_steps) < len(steps)
        series[key] = schemas.Series(steps=kept_steps, values=kept_values)
    return schemas.MetricsOut(
        job_id=job.id,
        keys=wanted,
        total_points=len(rows),
        downsampled=downsampled,
        last_step=rows[-1][0] if rows else None,
        series=series,
    )


def _csv(job_id: str, rows: list, keys: list[str], max_points: int) -> Response:
    if max_points and len(rows) > max_points:
        # Thin rows by one reference key's min/max buckets (the first key), keeping whole rows.
        reference = keys[0] if keys else None
        index = list(range(len(rows)))
        values = [float(r[1].get(reference, 0.0)) if reference else 0.0 for r in rows]
        kept, _ = minmax_downsample(index, values, max_points)
        rows = [rows[i] for i in kept]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["step", *keys])
    for step, values in rows:
        writer.writerow([step, *(repr(float(values[k])) if k in values else "" for k in keys)])
    return Response(
        buffer.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="job-{job_id}-metrics.csv"'},
    )


@router.get(
    "/{job_id}/policy",
    response_class=Response,
    responses={
        200: {"content": {"application/zip": {}}, "description": "policy file + policy.json"},
        409: {"description": "No policy yet (and, for a job that runs, no checkpoint yet)"},
    },
)
def get_policy(
    job_id: str,
    user: UserDep,
    session: SessionDep,
    settings: SettingsDep,
    format: Annotated[PolicyFormat, Query()] = PolicyFormat.safetensors,
    which: Annotated[
        PolicyWhich, Query(description="final, or best (best mean return).")
    ] = PolicyWhich.final,
) -> Response:
    """A zip with the policy (safetensors weights or ONNX) and its JSON config.

    While the job is queued or running, `final` is the policy of its last checkpoint
    (the file name says its step; policy.json's metadata has `from_checkpoint: true`).

    Unzip and load with `rlcore.export.load_policy(folder)`, or run policy.onnx in onnxruntime.
    """
    job = get_owned_job(session, user, job_id)
    kind = "policy" if which == PolicyWhich.final else "best_policy"
    files = ["policy.json", f"policy.{format.value}"]
    label = which.value
    # The folder comes from the job's id in the database and fixed file names: no user input.
    if any(a.kind == kind for a in job.artifacts):
        folder = settings.job_dir(job.id) / ("best" if which == PolicyWhich.best else "")
    elif which == PolicyWhich.final and job.status in (JobStatus.queued, JobStatus.running):
        # Not finished yet: the policy as of the last checkpoint, exported now.
        exported = export_from_checkpoint(settings.job_dir(job.id))
        if exported is None:
            raise HTTPException(
                status.HTTP_409_CONFLICT, f"job {job.id} ({job.status}) has no checkpoint yet; try later"
            )
        folder, step = exported
        label = f"step{step}"
    else:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"job {job.id} ({job.status}) has no {which.value} policy yet"
        )
    missing = [name for name in files if not (folder / name).is_file()]
    if missing:
        raise HTTPException(status.HTTP_409_CONFLICT, f"job {job.id}: {', '.join(missing)} not available")
    buffer = io.BytesIO()
    try:
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in files:
                archive.write(folder / name, arcname=name)
    except FileNotFoundError:  # a newer checkpoint's export replaced these files just now
        raise HTTPException(status.HTTP_409_CONFLICT, f"job {job.id}: policy changed; try again") from None
    filename = f"job-{job.id}-{label}-{format.value}.zip"
    return Response(
        buffer.getvalue(),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
