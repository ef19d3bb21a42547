"""`/api/studies`: sweeps over any spec fields and many seeds, with their scores and statistics."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Response, status
from fastapi.exceptions import RequestValidationError
from sqlalchemy import func, select

from app.auth import CurrentUser, UserDep
from app.deps import CeleryDep, SessionDep, SettingsDep
from app.models import FINISHED, Job, Study, StudyCell
from app.schemas import DB_INT_MAX, error_responses
from app.services import add_and_enqueue, delete_jobs, new_job, request_cancel
from app.studies.design import cell_label, design
from app.studies.schemas import AxisRange, Metric, ProfileOut, ScoresExport, StudyCreate, StudyList
from app.studies.schemas import Study as StudyOut
from app.studies.views import export_rows, jobs_of, profile_out, scores_csv, study_out, summary

router = APIRouter(prefix="/api/studies", tags=["studies"], responses=error_responses(401, 403, 422))
NOT_YOURS = error_responses(404)
MetricQuery = Annotated[
    Metric, Query(description="final, mmer or eval: the score that picks the best cell of each env.")
]
CELLS_PATTERN = r"^ *[0-9]{1,9} *(, *[0-9]{1,9} *)*$"


def get_owned_study(session: SessionDep, user: CurrentUser, study_id: str) -> Study:
    """The study if it exists and belongs to `user`; 404 otherwise."""
    study = session.get(Study, study_id) if study_id.isalnum() and len(study_id) <= 32 else None
    if study is None or study.user_id != user.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"study {study_id} not found")
    return study


def _job_name(label: str, cell: str, seed: int) -> str:
    """ "<study name> <cell values> seed <seed>", cut to a name's 200 characters (the seed kept)."""
    suffix = f" seed {seed}"
    return f"{label} {cell}"[: 200 - len(suffix)] + suffix


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=StudyOut,
    responses=error_responses(
        400, 413, 429, 503, d429="The study's jobs would exceed your queued + running quota"
    ),
)
def create_study(
    payload: StudyCreate, user: UserDep, session: SessionDep, settings: SettingsDep, celery: CeleryDep
) -> StudyOut:
    """Queue one job per cell and seed, after checking every one of them (422 names the bad cell).

    Grid search makes every combination of the axes' values; random search draws `samples`
    distinct cells, reproducibly from `study_seed`. The whole study fits the quotas or none
    of it is queued.
    """
    plan = design(payload, settings)
    study = Study(
        user_id=user.id,
        name=payload.name,
        spec=payload.spec,
        axes=[
            {"field": f, "range": a.model_dump()} if isinstance(a, AxisRange) else {"field": f, "values": a}
            for f, a in payload.axes.items()
        ],
        seeds=list(payload.seeds),
        search=payload.search,
        samples=payload.samples,
        study_seed=plan.study_seed,
    )
    study.cells = [StudyCell(number=i, values=values) for i, values in enumerate(plan.cells)]
    session.add(study)
    session.flush()
    jobs = [
        new_job(
            user,
            spec,
            settings,
            name=_job_name(payload.name or "study", cell_label(cell.values), spec.seed),
            tags=payload.tags,
            priority=payload.priority,
            study_id=study.id,
            cell_id=cell.id,
        )
        for cell, specs in zip(study.cells, plan.specs, strict=True)
        for spec in specs
    ]
    add_and_enqueue(session, celery, settings, jobs, message=f"submitted in study {study.id}")
    return study_out(session, study)


@router.get("", response_model=StudyList)
def list_studies(
    user: UserDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    offset: Annotated[int, Query(ge=0, le=DB_INT_MAX)] = 0,
) -> StudyList:
    """The user's studies, newest first: design and progress (GET /api/studies/{id} has the scores)."""
    query = select(Study).where(Study.user_id == user.id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    studies = session.scalars(
        query.order_by(Study.created_at.desc(), Study.id).limit(limit).offset(offset)
    ).all()
    jobs: dict[str, list[Job]] = {s.id: [] for s in studies}
    for job in jobs_of(session, list(jobs)):
        jobs[job.study_id or ""].append(job)
    return StudyList(items=[summary(s, jobs[s.id]) for s in studies], total=total, limit=limit, offset=offset)


@router.get("/{study_id}", response_model=StudyOut, responses=NOT_YOURS)
def get_study(study_id: str, user: UserDep, session: SessionDep, metric: MetricQuery = "final") -> StudyOut:
    """Every cell with its runs, progress and scores (mean and IQM with 95% intervals), and the best
    cell per env. Unfinished runs are scored from their points so far (`partial`)."""
    return study_out(session, get_owned_study(session, user, study_id), metric)


@router.get("/{study_id}/profile", response_model=ProfileOut, responses=NOT_YOURS)
def get_profile(
    study_id: str,
    user: UserDep,
    session: SessionDep,
    metric: Annotated[Metric, Query(description="The score profiled: final, mmer or eval.")] = "final",
    cells: Annotated[
        str | None,
        Query(
            max_length=10_000, pattern=CELLS_PATTERN, description="Comma-separated cell indexes; default all."
        ),
    ] = None,
    by: Annotated[
        Literal["cell", "config"],
        Query(description="cell: a profile per cell; config: cells that differ only in env_id pooled."),
    ] = "cell",
    points: Annotated[int, Query(ge=2, le=1001, description="Thresholds tau from 0 to 1.")] = 51,
) -> ProfileOut:
    """Performance profiles on normalised scores: each run's score min-max scaled by its env's
    lowest and highest run in the study; the fraction of runs above each tau, with 95% bands."""
    study = get_owned_study(session, user, study_id)
    selected = None
    if cells is not None:
        selected = list(dict.fromkeys(int(c) for c in cells.split(",")))
        unknown = [c for c in selected if c >= len(study.cells)]
        if unknown:
            raise RequestValidationError(
                [
                    {
                        "type": "value_error",
                        "loc": ("query", "cells"),
                        "msg": f"no cell {unknown[0]}: the study has cells 0 to {len(study.cells) - 1}",
                        "input": cells,
                    }
                ]
            )
    return profile_out(session, study, metric, by, selected, points)


@router.get("/{study_id}/scores.json", response_model=ScoresExport, responses=NOT_YOURS)
def get_scores_json(study_id: str, user: UserDep, session: SessionDep) -> Response:
    """Every run's cell, axis values, seed, job, status and scores, as a JSON download."""
    study = get_owned_study(session, user, study_id)
    body = ScoresExport(study_id=study.id, fields=study.fields, runs=export_rows(session, study))
    return Response(
        body.model_dump_json(),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="study-{study.id}-scores.json"'},
    )


@router.get(
    "/{study_id}/scores.csv",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}}, "description": "cell, a column per axis, seed, job and scores"},
        **NOT_YOURS,
    },
)
def get_scores_csv(study_id: str, user: UserDep, session: SessionDep) -> Response:
    """The scores export as CSV: a row per run; empty where a run has no such score yet."""
    study = get_owned_study(session, user, study_id)
    return Response(
        scores_csv(study, export_rows(session, study)),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="study-{study.id}-scores.csv"'},
    )


@router.post("/{study_id}/cancel", response_model=StudyOut, responses=NOT_YOURS)
def cancel_study(study_id: str, user: UserDep, session: SessionDep) -> StudyOut:
    """Cancel every unfinished job: queued ones at once, running ones within seconds (their
    checkpoints kept). Finished jobs stay as they are; cancelling again is a no-op."""
    study = get_owned_study(session, user, study_id)
    for job in jobs_of(session, [study.id]):
        if job.status not in FINISHED:
            request_cancel(session, job)
    session.commit()
    return study_out(session, study)


@router.delete(
    "/{study_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(
        404, 409, d409="Some of its jobs are queued or running; cancel the study first"
    ),
)
def delete_study(study_id: str, user: UserDep, session: SessionDep, settings: SettingsDep) -> Response:
    """Delete the study with its jobs, their metric points and files; 409 while a job is unfinished."""
    study = get_owned_study(session, user, study_id)
    jobs = jobs_of(session, [study.id])
    active = [job for job in jobs if job.status not in FINISHED]
    if active:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"{len(active)} of the study's jobs are queued or running; cancel the study first",
        )
    delete_jobs(session, settings, jobs, also=[study])
    return Response(status_code=status.HTTP_204_NO_CONTENT)
