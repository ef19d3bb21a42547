"""Replays and probes of a job's policies: which export they play, where their files live, the quota.

Files live in the job's folder, `replays/<replay id>.json` and `.mp4`, named by the row's
id (random hex, from the database) and fixed suffixes: nothing a request sends becomes a
path. Deleting the job removes them with its folder.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import HTTPException, status
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Job, JobStatus, Replay, ReplayStatus
from app.schemas import UtcDatetime
from app.settings import Settings

FOLDER = "replays"
MAX_REPLAY_STEPS = 5_000  # rlcore.replay.MAX_STEPS: one recorded episode's steps at most
MAX_PROBE_STEPS = 1_000  # per probed episode
MAX_PROBE_EPISODES = 256
PolicyName = Literal["final", "best", "checkpoint"]
ReplayKind = Literal["replay", "probe"]
ReplayStatusName = Literal["queued", "running", "ready", "failed"]


class ReplayCreate(BaseModel):
    """`POST /api/jobs/{id}/replays`: play one episode (`replay`) or probe the memory (`probe`)."""

    model_config = ConfigDict(extra="forbid")

    kind: ReplayKind = "replay"
    policy: PolicyName = Field(
        "final",
        description="final or best (a finished job's), or checkpoint (a running job's last checkpoint).",
    )
    seed: int = Field(0, ge=0, le=2**31 - 1)
    deterministic: bool = Field(False, description="Greedy actions instead of sampled ones.")
    max_steps: int = Field(
        1_000, ge=1, le=MAX_REPLAY_STEPS, description=f"Per episode; a probe: {MAX_PROBE_STEPS} at most."
    )
    episodes: Annotated[int | None, Field(ge=4, le=MAX_PROBE_EPISODES)] = Field(
        None, description="Probe only: episodes to collect (default 64); a quarter are held out."
    )

    @model_validator(mode="after")
    def _fits_kind(self) -> ReplayCreate:
        if self.kind == "replay" and self.episodes is not None:
            raise ValueError("episodes: only a probe collects several episodes")
        if self.kind == "probe" and self.max_steps > MAX_PROBE_STEPS:
            raise ValueError(f"max_steps: a probe's episodes have at most {MAX_PROBE_STEPS} steps")
        return self

    def params(self) -> dict[str, Any]:
        """What the worker needs, as stored on the row."""
        params = self.model_dump(exclude={"kind"})
        if self.kind == "probe":
            params["episodes"] = self.episodes or 64
        else:
            params.pop("episodes")
        return params


class ReplayOut(BaseModel):
    """A replay or probe; `data` (its JSON: see the README) once `status` is ready."""

    id: str
    job_id: str
    kind: ReplayKind
    status: ReplayStatusName
    params: dict[str, Any]
    error: str | None
    created_at: UtcDatetime
    finished_at: UtcDatetime | None
    has_video: bool = Field(description="GET /api/replays/{id}/video serves its MP4.")
    data: dict[str, Any] | None = None


class ReplayList(BaseModel):
    items: list[ReplayOut]


def replay_files(settings: Settings, replay: Replay) -> tuple[Path, Path]:
    """The replay's JSON and video paths: the job's folder, `replays/`, the row's id."""
    if not replay.id.isalnum():  # defence in depth: ids are uuid hex
        raise ValueError(f"bad replay id {replay.id!r}")
    folder = settings.job_dir(replay.job_id) / FOLDER
    return folder / f"{replay.id}.json", folder / f"{replay.id}.mp4"


def replay_out(settings: Settings, replay: Replay, data: dict[str, Any] | None = None) -> ReplayOut:
    return ReplayOut(
        id=replay.id,
        job_id=replay.job_id,
        kind=replay.kind,  # type: ignore[arg-type]
        status=replay.status,  # type: ignore[arg-type]
        params=replay.params,
        error=replay.error,
        created_at=replay.created_at,
        finished_at=replay.finished_at,
        has_video=replay.kind == "replay" and replay.status == ReplayStatus.ready,
        data=data,
    )


def policy_folder(settings: Settings, job: Job, policy: str) -> Path | None:
    """The export folder of the job's `policy` (final, best), or None: not there (yet).

    `checkpoint` has no folder until it is exported (app/checkpoint_policy.py); see `has_policy`.
    """
    kinds = {a.kind for a in job.artifacts}
    if policy == "final" and "policy" in kinds:
        return settings.job_dir(job.id)
    if policy == "best" and "best_policy" in kinds:
        return settings.job_dir(job.id) / "best"
    return None


def has_policy(settings: Settings, job: Job, policy: str) -> bool:
    """Whether the job has that policy now: an exported one, or for `checkpoint` a checkpoint."""
    if policy == "checkpoint":
        from rlcore.checkpoint import CHECKPOINTS, LAST

        return (settings.job_dir(job.id) / CHECKPOINTS / LAST).is_file()
    return policy_folder(settings, job, policy) is not None


def check_policy(settings: Settings, job: Job, policy: str) -> None:
    """409 when the job has no such policy yet, saying what it has."""
    if has_policy(settings, job, policy):
        return
    hint = ""
    if policy != "checkpoint" and job.status in (JobStatus.queued, JobStatus.running):
        hint = "; while it runs, ask for policy=checkpoint"
    raise HTTPException(
        status.HTTP_409_CONFLICT, f"job {job.id} ({job.status}) has no {policy} policy yet{hint}"
    )


def reserve_replay(session: Session, settings: Settings, user_id: int) -> None:
    """429 when the user already has `max_queued_replays` replays queued or running."""
    waiting = session.scalar(
        select(func.count())
        .select_from(Replay)
        .where(Replay.user_id == user_id, Replay.status.in_([ReplayStatus.queued, ReplayStatus.running]))
    )
    if (waiting or 0) >= settings.max_queued_replays:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"{waiting} replays queued or running (the most is {settings.max_queued_replays}); "
            "wait for them to finish",
        )


def get_owned_replay(session: Session, user_id: int, replay_id: str) -> Replay:
    """The replay if it exists and is the user's; 404 otherwise."""
    replay = session.get(Replay, replay_id) if replay_id.isalnum() and len(replay_id) <= 32 else None
    if replay is None or replay.user_id != user_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"replay {replay_id} not found")
    return replay


def hidden_names(spec: dict[str, Any]) -> tuple[str, ...] | None:
    """Names of what the job's env hides from the agent; None when the env cannot be built here."""
    from rlcore.spec import TrainSpec

    try:
        saved = TrainSpec.from_saved(spec, check_memory=False)
    except Exception:  # an old or plugin spec: the worker will say what is wrong
        return None
    return _hidden_names(saved.env_id, saved.env_options())


@functools.cache  # EnvOptions is a frozen dataclass: a key; building an env takes a while
def _hidden_names(env_id: str, options: Any) -> tuple[str, ...] | None:
    from rlcore.envs import hidden_variables, make_vec_env

    try:
        envs = make_vec_env(env_id, 1, 0, options)
    except Exception:
        return None
    try:
        return tuple(v.name for v in hidden_variables(envs))
    finally:
        envs.close()
