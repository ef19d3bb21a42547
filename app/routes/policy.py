"""`/api/jobs/{id}/policy`: the trained policy as a zip (safetensors or ONNX, with its JSON config)."""

from __future__ import annotations

import io
import zipfile
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status

from app.auth import UserDep
from app.checkpoint_policy import export_from_checkpoint
from app.deps import SessionDep, SettingsDep
from app.models import JobStatus
from app.schemas import error_responses
from app.services import get_owned_job

router = APIRouter(prefix="/api/jobs", tags=["policy"], responses=error_responses(401, 403, 404, 422))


class PolicyFormat(StrEnum):
    safetensors = "safetensors"
    onnx = "onnx"


class PolicyWhich(StrEnum):
    final = "final"
    best = "best"


@router.get(
    "/{job_id}/policy",
    response_class=Response,
    responses={
        200: {"content": {"application/zip": {}}, "description": "policy file + policy.json"},
        **error_responses(409, d409="No policy yet (and, for a job that runs, no checkpoint yet)"),
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
