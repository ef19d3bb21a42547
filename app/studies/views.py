"""What `/api/studies` answers: a study's summary, its cells with runs and scores, the best
cell per env, performance profiles, and the export of every run's scores."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, lazyload

from app.models import FINISHED, Job, JobStatus, Study, StudyCell
from app.run_scores import RunScores, scores_for
from app.studies import schemas as out
from app.studies.design import axis_values, cell_label
from app.studies.schemas import AxisRange, Metric
from app.studies.stats import (
    CONFIDENCE,
    best_of,
    bounds,
    improvement,
    normalised,
    profile,
    score_aggregates,
    values_of,
)
from rlcore.spec import TrainSpec

EXPORT_COLUMNS = (
    "seed",
    "job_id",
    "status",
    "step",
    "total_steps",
    "final_score",
    "mmer",
    "eval_score",
    "partial",
)


def jobs_of(session: Session, study_ids: Sequence[str]) -> list[Job]:
    """The studies' jobs, without their tags, history and artifacts (a view of runs needs none)."""
    if not study_ids:
        return []
    query = (
        select(Job)
        .where(Job.study_id.in_(list(study_ids)))
        .options(lazyload(Job.tags), lazyload(Job.events), lazyload(Job.artifacts))
        .order_by(Job.created_at, Job.id)
    )
    return list(session.scalars(query))


def progress(jobs: Sequence[Job]) -> out.Progress:
    """Steps done over all the jobs (each counted up to its total_steps), and jobs by status."""
    counts = {s.value: 0 for s in JobStatus}
    steps = total = 0
    for job in jobs:
        counts[job.status] += 1
        total += job.total_steps
        steps += min(job.last_step or 0, job.total_steps)
    percent = round(min(100.0, 100.0 * steps / total), 2) if total else 0.0
    return out.Progress(steps=steps, total_steps=total, percent=percent, jobs=counts)  # type: ignore[arg-type]


def study_status(jobs: Sequence[Job]) -> str:
    if all(job.status in FINISHED for job in jobs):
        return "finished"
    if all(job.status == JobStatus.queued and not job.last_step for job in jobs):
        return "queued"
    return "running"


def summary(study: Study, jobs: Sequence[Job]) -> out.StudySummary:
    """The study's design and progress, for lists."""
    return out.StudySummary(**_summary_fields(study, jobs))


def _summary_fields(study: Study, jobs: Sequence[Job]) -> dict[str, Any]:
    return {
        "id": study.id,
        "name": study.name,
        "created_at": study.created_at,
        "search": study.search,
        "samples": study.samples,
        "study_seed": study.study_seed,
        "seeds": study.seeds,
        "fields": study.fields,
        "cells_count": len(study.cells),
        "jobs_count": len(jobs),
        "status": study_status(jobs),
        "progress": progress(jobs),
    }


def cell_env(study: Study, cell: StudyCell) -> str:
    """The env_id of a cell: its axis value, else the base spec's, else the spec default."""
    return str(cell.values.get("env_id", study.spec.get("env_id", TrainSpec.model_fields["env_id"].default)))


def _seed_of(job: Job) -> int:
    return int(job.spec.get("seed", 0))


def _runs_by_cell(study: Study, jobs: Sequence[Job]) -> dict[int, list[Job]]:
    """Each cell's jobs (by cell id), in the order of the study's seeds."""
    order = {seed: i for i, seed in enumerate(study.seeds)}
    by_cell: dict[int, list[Job]] = defaultdict(list)
    for job in jobs:
        if job.cell_id is not None:
            by_cell[job.cell_id].append(job)
    for runs in by_cell.values():
        runs.sort(key=lambda j: order.get(_seed_of(j), len(order)))
    return by_cell


def _run(job: Job, scores: RunScores) -> out.StudyRun:
    return out.StudyRun(
        job_id=job.id,
        seed=_seed_of(job),
        status=job.status,  # type: ignore[arg-type]
        step=job.last_step or 0,
        total_steps=job.total_steps,
        final_score=scores.final,
        mmer=scores.mmer,
        eval_score=scores.eval,
        partial=scores.partial,
    )


def _axes(study: Study) -> list[out.StudyAxis]:
    axes = []
    for axis in study.axes:
        given = AxisRange.model_validate(axis["range"]) if "range" in axis else None
        values = axis.get("values")
        if given is not None and study.search == "grid":
            values = axis_values(axis["field"], given)
        axes.append(out.StudyAxis(field=axis["field"], values=values, range=given))
    return axes


def study_out(session: Session, study: Study, metric: Metric = "final") -> out.Study:
    """The whole study: every cell with its runs, progress and scores, and the best cell per env."""
    jobs = jobs_of(session, [study.id])
    scores = scores_for(session, jobs)
    by_cell = _runs_by_cell(study, jobs)
    cells = []
    for cell in study.cells:
        runs = by_cell.get(cell.id, [])
        run_scores = [scores[j.id] for j in runs]
        cells.append(
            {
                "index": cell.number,
                "values": cell.values,
                "label": cell_label(cell.values),
                "env_id": cell_env(study, cell),
                "runs": [_run(j, scores[j.id]) for j in runs],
                "progress": progress(runs),
                "partial": any(s.partial for s in run_scores),
                "scores": score_aggregates(run_scores),
                "metric_values": values_of(run_scores, metric),
            }
        )
    best = []
    envs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for cell in cells:
        envs[cell["env_id"]].append(cell)
    for env_id, members in envs.items():
        by_index = {c["index"]: c for c in members}
        top = best_of({c["index"]: getattr(c["scores"], metric) for c in members})
        for cell in members:
            cell["is_best"] = cell["index"] == top
            cell["best_improvement"] = None
            if top is not None and cell["index"] != top and cell["metric_values"]:
                cell["best_improvement"] = improvement(by_index[top]["metric_values"], cell["metric_values"])
        if top is not None:
            winner = by_index[top]
            agg = getattr(winner["scores"], metric)
            best.append(
                out.BestCell(
                    env_id=env_id,
                    cell=top,
                    values=winner["values"],
                    label=winner["label"],
                    n=agg.n,
                    iqm=agg.iqm,
                    mean=agg.mean,
                )
            )
    return out.Study(
        **_summary_fields(study, jobs),
        spec=study.spec,
        axes=_axes(study),
        metric=metric,
        confidence=CONFIDENCE,
        cells=[out.StudyCell(**{k: v for k, v in c.items() if k != "metric_values"}) for c in cells],
        best=best,
    )


def export_rows(session: Session, study: Study) -> list[out.ScoreRow]:
    """Every run of the study: its cell and axis values, seed, job, status and scores."""
    jobs = jobs_of(session, [study.id])
    scores = scores_for(session, jobs)
    by_cell = _runs_by_cell(study, jobs)
    return [
        out.ScoreRow(cell=cell.number, values=cell.values, **_run(job, scores[job.id]).model_dump())
        for cell in study.cells
        for job in by_cell.get(cell.id, [])
    ]


def scores_csv(study: Study, rows: Sequence[out.ScoreRow]) -> str:
    """The export as CSV: `cell`, a column per axis field, then the run's columns (empty for none)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["cell", *study.fields, *EXPORT_COLUMNS])

    def text(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return repr(value) if isinstance(value, float) else str(value)

    for row in rows:
        data = row.model_dump()
        writer.writerow(
            [
                row.cell,
                *(text(row.values.get(f)) for f in study.fields),
                *(text(data[c]) for c in EXPORT_COLUMNS),
            ]
        )
    return buffer.getvalue()


def profile_out(
    session: Session,
    study: Study,
    metric: Metric,
    by: str,
    selected: Sequence[int] | None,
    points: int,
) -> out.ProfileOut:
    """Performance profiles of the selected cells (default all), each run's score normalised by
    the lowest and highest score of its env over all the study's runs.

    by "cell": one profile per cell; by "config": cells that differ only in env_id pooled into
    one profile whose tasks are the envs (weighted equally, rliable's stratified bootstrap).
    """
    jobs = jobs_of(session, [study.id])
    scores = scores_for(session, jobs)
    by_cell = _runs_by_cell(study, jobs)
    per_cell = {
        cell.number: (cell, values_of([scores[j.id] for j in by_cell.get(cell.id, [])], metric))
        for cell in study.cells
    }
    partial = {
        cell.number: any(scores[j.id].partial for j in by_cell.get(cell.id, [])) for cell in study.cells
    }
    env_values: dict[str, list[float]] = defaultdict(list)
    for cell, values in per_cell.values():
        env_values[cell_env(study, cell)].extend(values)
    env_bounds = {env: bounds(values) for env, values in env_values.items() if values}
    groups: dict[str, list[int]] = {}
    for number in selected if selected is not None else list(per_cell):
        cell = per_cell[number][0]
        config = {k: v for k, v in cell.values.items() if k != "env_id"} if by == "config" else cell.values
        key = json.dumps(config, sort_keys=True) if by == "config" else str(number)
        groups.setdefault(key, []).append(number)
    taus = np.linspace(0.0, 1.0, points)
    curves = []
    for members in groups.values():
        tasks: dict[str, list[float]] = defaultdict(list)
        for number in members:
            cell, values = per_cell[number]
            env = cell_env(study, cell)
            if values:
                tasks[env].extend(normalised(values, *env_bounds[env]))
        fractions, lower, upper = profile(list(tasks.values()), taus)
        values = per_cell[members[0]][0].values
        shown = {k: v for k, v in values.items() if k != "env_id"} if by == "config" else values
        curves.append(
            out.ProfileCurve(
                cells=members,
                values=shown,
                label=cell_label(shown),
                envs=sorted({cell_env(study, per_cell[n][0]) for n in members}),
                runs=sum(len(t) for t in tasks.values()),
                partial=any(partial[n] for n in members),
                fractions=fractions,
                lower=lower,
                upper=upper,
            )
        )
    return out.ProfileOut(
        study_id=study.id,
        metric=metric,
        by=by,  # type: ignore[arg-type]
        normalisation="min-max per env over the study's runs: (score - lowest) / (highest - lowest); "
        "0.5 where every run of an env scored the same",
        bounds=[
            out.EnvBounds(env_id=env, low=low, high=high, runs=len(env_values[env]))
            for env, (low, high) in sorted(env_bounds.items())
        ],
        taus=taus.tolist(),
        profiles=curves,
    )
