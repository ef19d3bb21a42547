"""Request and response models: the JSON shapes of the API and of the event stream.

Requests reuse `rlcore.spec.TrainSpec` as the job definition. Times are ISO 8601 in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from rlcore.lineage import FORKABLE
from rlcore.spec import ModelKind, TrainSpec

JobStatusName = Literal["queued", "running", "succeeded", "failed", "cancelled"]


def _utc(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; every time we store is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
TAG_CHARS = r"[\w.:/@+-]"
Tag = Annotated[str, Field(min_length=1, max_length=100, pattern=rf"^{TAG_CHARS}+$")]
# No control characters: PostgreSQL cannot store NUL, and a name is shown as one line.
Name = Annotated[str, Field(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]
# Largest offset, step or id a request may name: SQLite and PostgreSQL integers are signed
# 64-bit, and an OFFSET plus its LIMIT must stay below 2**63 too.
DB_INT_MAX = 2**62
# Status-event ids are 32-bit integer keys: a client's larger id means "after all of them".
EVENT_ID_MAX = 2**31 - 1


# -- requests ---------------------------------------------------------------------------------


class JobCreate(BaseModel):
    """`POST /api/jobs`: a TrainSpec plus optional name, tags and priority."""

    model_config = ConfigDict(extra="forbid")

    spec: TrainSpec
    name: Name | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    priority: int = Field(
        0, ge=0, le=9, description="0 (default) to 9 (first): orders your own queued jobs, not others'."
    )


class GroupCreate(BaseModel):
    """`POST /api/groups`: one spec over several seeds and, optionally, several model variants."""

    model_config = ConfigDict(extra="forbid")

    spec: TrainSpec = Field(description="Every (model, seed) variant of it must be a valid TrainSpec.")
    seeds: list[Annotated[int, Field(ge=0, le=2**31 - 1)]] = Field(
        default_factory=lambda: [0, 1, 2],
        min_length=1,
        max_length=20,
        json_schema_extra={"uniqueItems": True},
        description="Distinct seeds; one job per (model, seed).",
    )
    models: list[ModelKind] | None = Field(
        None,
        min_length=1,
        max_length=len(ModelKind),
        json_schema_extra={"uniqueItems": True},
        description="Distinct model variants. Default: the spec's model only.",
    )
    name: Name | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    priority: int = Field(0, ge=0, le=9)

    @field_validator("seeds", "models")
    @classmethod
    def _unique(cls, values: list[Any] | None) -> list[Any] | None:
        if values is not None and len(set(values)) != len(values):
            raise ValueError("must not repeat a value")
        return values


class JobExtend(BaseModel):
    """`POST /api/jobs/{id}/extend`: train a finished or cancelled job on, to a larger budget."""

    model_config = ConfigDict(extra="forbid")

    total_steps: int = Field(
        ge=1,
        le=DB_INT_MAX,
        description="The job's new budget of env steps: more than its total_steps now, and within the "
        "spec's and the service's limits.",
    )


class JobFork(BaseModel):
    """`POST /api/jobs/{id}/fork`: a new job that starts from the job's last checkpoint."""

    model_config = ConfigDict(extra="forbid")

    spec: dict[str, Any] = Field(
        default_factory=dict,
        max_length=len(TrainSpec.model_fields),
        description="The spec fields to change, over the parent's; the others are the parent's. A fork may "
        f"change only {', '.join(sorted(FORKABLE))}; total_steps must exceed the checkpoint's step.",
    )
    name: Name | None = Field(None, description="Default: the parent's name.")
    tags: list[Tag] | None = Field(None, max_length=20, description="Default: the parent's tags.")
    priority: int | None = Field(None, ge=0, le=9, description="Default: the parent's priority.")


# -- errors -----------------------------------------------------------------------------------


class ErrorOut(BaseModel):
    """Every error but 422: one line saying what went wrong."""

    detail: str


class FieldError(BaseModel):
    """One invalid input. `input` is the value, or a short repr of a long or non-JSON one."""

    loc: list[str | int] = Field(description='Where: e.g. ["body", "spec", "total_steps"].')
    msg: str
    type: str
    input: Any = None
    ctx: dict[str, Any] | None = None


class ValidationErrorOut(BaseModel):
    """422: every invalid input, and `message`, one readable line naming the fields."""

    detail: list[FieldError]
    message: str


_ERROR_DESCRIPTIONS = {
    400: "The body could not be read as JSON text (e.g. it is not UTF-8)",
    401: "Missing or invalid token",
    403: "The token may not do this (a metrics token reads only /metrics)",
    404: "Not found, or not the caller's",
    409: "Conflicts with the current state",
    413: "Request body over the limit (RLSERVE_MAX_BODY_BYTES, default 1 MiB)",
    422: "Invalid input; `message` names the fields",
    429: "Over the caller's quota; retry later",
    503: "A service it needs (database, task queue) cannot be reached",
}


def error_responses(*codes: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses; `d409="..."` overrides a default description."""
    return {
        code: {
            "model": ValidationErrorOut if code == 422 else ErrorOut,
            "description": descriptions.get(f"d{code}", _ERROR_DESCRIPTIONS[code]),
        }
        for code in codes
    }


# -- responses --------------------------------------------------------------------------------


class StatusEvent(BaseModel):
    """One status transition in a job's history."""

    status: JobStatusName
    at: UtcDatetime
    message: str | None = None


class ArtifactOut(BaseModel):
    kind: Literal["policy", "best_policy", "checkpoint"]
    step: int
    size_bytes: int
    created_at: UtcDatetime


class Job(BaseModel):
    """`GET /api/jobs/{id}` and every job in a list."""

    id: str
    name: str | None
    tags: list[str]
    priority: int
    group_id: str | None
    study_id: str | None
    status: JobStatusName
    spec: dict[str, Any] = Field(description="The full TrainSpec with every default filled in.")
    queue: str
    device: str | None = Field(description="Device the worker trains on (cpu, cuda:0), once running.")
    worker_host: str | None
    attempts: int = Field(description="Times a worker started this job (more than 1 after a crash).")
    cancel_requested: bool
    error: str | None
    created_at: UtcDatetime
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None
    heartbeat_at: UtcDatetime | None
    history: list[StatusEvent]
    step: int = Field(description="Env steps done, from the last metric point.")
    total_steps: int
    progress: float = Field(description="Percent of total_steps done, 0 to 100.")
    eta_seconds: float | None = Field(description="Estimated seconds left while running.")
    resumed_from_step: int | None = Field(description="Checkpoint step of the last resume, if any.")
    parent_id: str | None = Field(None, description="The job it was forked from (None once that is deleted).")
    forked_at_step: int | None = Field(None, description="Step of the parent's checkpoint it started from.")
    latest_metrics: dict[str, float] | None
    points_written: int
    mean_return: float | None = Field(description="Mean return of the last 100 episodes at the end.")
    best_return: float | None
    final_score: float | None = Field(
        description="Mean episodic return over the last 10% of training (by env steps), weighted by episodes."
    )
    mmer: float | None = Field(
        description="Maximum mean episodic return (POPGym's MMER): the best mean return over consecutive "
        "metric points holding at least 10 episodes."
    )
    eval_score: float | None = Field(description="The last evaluation's mean return, when evaluations ran.")
    scores_partial: bool = Field(
        description="The job is unfinished: GET /api/jobs/{id} gives its scores from the points so far; "
        "lists and streams give null until it finishes."
    )
    has_policy: bool = Field(description="True when GET /api/jobs/{id}/policy will answer 200.")
    artifacts: list[ArtifactOut]


class JobList(BaseModel):
    """`GET /api/jobs`: newest first."""

    items: list[Job]
    total: int
    limit: int
    offset: int


class Interval(BaseModel):
    """A point estimate and its 95% stratified-bootstrap confidence interval."""

    point: float
    low: float
    high: float


class Aggregate(BaseModel):
    """One score over the runs that have it: their number, mean and IQM (each with its interval)."""

    n: int = Field(description="Runs with this score (unfinished runs count with their points so far).")
    mean: Interval | None = Field(description="Null when no run has the score.")
    iqm: Interval | None = Field(description="Interquartile mean (the plain mean below 4 runs).")


class ScoreAggregates(BaseModel):
    """The runs' final scores, MMERs and eval scores, aggregated."""

    final: Aggregate
    mmer: Aggregate
    eval: Aggregate


class GroupModelScores(BaseModel):
    """One model variant of a group, over its seeds."""

    model: str
    jobs: int
    partial: bool = Field(description="Some job is unfinished: its scores are of its points so far.")
    scores: ScoreAggregates


class Group(BaseModel):
    id: str
    name: str | None
    spec: dict[str, Any]
    seeds: list[int]
    models: list[str]
    created_at: UtcDatetime
    jobs: list[Job]
    scores: list[GroupModelScores] = Field(
        description="Per model variant: final score and MMER over its seeds."
    )


class GroupList(BaseModel):
    items: list[Group]
    total: int
    limit: int
    offset: int


class Series(BaseModel):
    """One metric key's curve: parallel arrays, in step order."""

    steps: list[int]
    values: list[float]


class MetricsOut(BaseModel):
    """`GET /api/jobs/{id}/metrics` (JSON). CSV has columns `step` and one per key."""

    job_id: str
    keys: list[str]
    total_points: int = Field(description="Points stored for the job after since_step.")
    downsampled: bool
    last_step: int | None = Field(description="Highest step included; use as the next since_step.")
    series: dict[str, Series]


class MetricPoint(BaseModel):
    """One trainer update: env step and its metrics (CleanRL keys, e.g. charts/episodic_return)."""

    step: int
    metrics: dict[str, float]


class EnvOut(BaseModel):
    id: str
    description: str
    solved_return: float | None
    needs_memory: bool
    max_episode_steps: int | None
    family: str = Field(description="classic, memory, atari, popgym, or plugin (added by the operator)")
    pixels: bool = Field(description="Observations are uint8 frames (the encoder is the CNN).")
    action_names: list[str] = Field(description="What each discrete action does, by index.")
    options: list[str] = Field(description="The env options a spec may set for it (frame_stack, ...).")
    defaults: dict[str, dict[str, Any]] = Field(
        description="Per algorithm, the spec defaults this env sets (over the algorithm's own)."
    )


class ModelsOut(BaseModel):
    """`GET /api/models`: the choices of a submit form and their defaults."""

    algorithms: list[str]
    models: list[str]
    devices: list[str]
    algorithm_fields: dict[str, list[str]] = Field(
        description="The spec fields each algorithm uses; a spec that sets another one is refused."
    )
    algorithm_defaults: dict[str, dict[str, Any]]
    spec_defaults: dict[str, Any] = Field(description="Defaults that do not depend on the algorithm.")
    spec_schema: dict[str, Any] = Field(description="JSON schema of TrainSpec (bounds, descriptions).")


class Me(BaseModel):
    user: str
    token_name: str


# -- Server-Sent Events (`GET /api/jobs/{id}/events`) -------------------------------------------
#
# Every event carries an `id:` of the form "<step>-<status_event_id>": the last metric
# step and the last status event sent so far. Reconnecting with that value in the
# Last-Event-ID header (EventSource does it) sends exactly what came after it.


class StatusEventData(BaseModel):
    """`event: status`: a status transition; `job` is the job as it is now."""

    job_id: str
    status: JobStatusName
    at: UtcDatetime
    message: str | None
    job: Job


class MetricsEventData(BaseModel):
    """`event: metrics`: new points, in step order."""

    job_id: str
    points: list[MetricPoint]


class EndEventData(BaseModel):
    """`event: end`: the job is finished and every point was sent; the server closes the stream."""

    job_id: str
    status: JobStatusName


# -- Server-Sent Events (`GET /api/events`): all the user's jobs -----------------------------------
#
# `event: job` carries a `Job` (as GET /api/jobs/{id} answers); `event: points` the
# notice below. Event ids are the last status event's id, for Last-Event-ID.


class PointsEventData(BaseModel):
    """`event: points`: a running job has new metric points stored, up to `last_step`."""

    job_id: str
    last_step: int
