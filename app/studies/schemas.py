"""The JSON shapes of `/api/studies`: the request that defines a study, and its views."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic import Tag as Variant

from app.schemas import Interval, JobStatusName, Name, ScoreAggregates, Tag, UtcDatetime

Metric = Literal["final", "mmer", "eval"]
AxisValue = str | int | float | bool | None
FieldName = Annotated[str, StringConstraints(max_length=64)]
MAX_AXES = 16
MAX_AXIS_VALUES = 1000


# -- requests ---------------------------------------------------------------------------------


class AxisRange(BaseModel):
    """Values from `low` to `high`: `count` of them for a grid, drawn between them for random search.

    `log` spacing is geometric (low must be above 0). Integer fields get rounded values,
    repeats dropped; float values keep 6 significant digits.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    low: float
    high: float
    count: int | None = Field(None, ge=1, le=MAX_AXIS_VALUES, description="Values in a grid; required there.")
    spacing: Literal["linear", "log"] = "linear"

    @model_validator(mode="after")
    def _ordered(self) -> AxisRange:
        if self.high < self.low:
            raise ValueError("high must not be below low")
        if self.spacing == "log" and self.low <= 0:
            raise ValueError("log spacing needs low > 0")
        return self


AxisValues = Annotated[list[AxisValue], Field(min_length=1, max_length=MAX_AXIS_VALUES)]


def _axis_kind(value: Any) -> str:
    return "range" if isinstance(value, dict | AxisRange) else "values"


# Tagged, so that a bad axis gets the errors of what it looks like (a list or a range), not of both.
Axis = Annotated[
    Annotated[AxisValues, Variant("values")] | Annotated[AxisRange, Variant("range")],
    Discriminator(_axis_kind),
]


class StudyCreate(BaseModel):
    """`POST /api/studies`: a base spec, axes over its fields, seeds, and grid or random search."""

    model_config = ConfigDict(extra="forbid")

    spec: dict[str, Any] = Field(
        default_factory=dict,
        description="TrainSpec fields shared by every cell (see GET /api/models for the schema). "
        "Defaults are filled per cell, so an axis over algo or env_id gets each one's own defaults.",
    )
    axes: dict[FieldName, Axis] = Field(
        default_factory=dict,
        max_length=MAX_AXES,
        description="TrainSpec field -> a list of values, or a range {low, high, count, spacing}. "
        "Grid: every combination; random: `samples` distinct draws.",
    )
    seeds: list[Annotated[int, Field(ge=0, le=2**31 - 1)]] = Field(
        default_factory=lambda: [0, 1, 2],
        min_length=1,
        max_length=100,
        json_schema_extra={"uniqueItems": True},
        description="Distinct seeds; one job per cell and seed.",
    )
    search: Literal["grid", "random"] = "grid"
    samples: int | None = Field(None, ge=1, le=100_000, description="Random search: cells to draw.")
    study_seed: int | None = Field(
        None,
        ge=0,
        le=2**31 - 1,
        description="Random search: seed of the draw (default: a new one, returned).",
    )
    name: Name | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    priority: int = Field(0, ge=0, le=9)

    @field_validator("seeds")
    @classmethod
    def _unique(cls, values: list[int]) -> list[int]:
        if len(set(values)) != len(values):
            raise ValueError("must not repeat a value")
        return values


# -- responses --------------------------------------------------------------------------------


class Progress(BaseModel):
    """Env steps done over all the runs, and their jobs by status."""

    steps: int
    total_steps: int
    percent: float = Field(description="0 to 100.")
    jobs: dict[JobStatusName, int] = Field(description="Jobs per status (every status, 0 included).")


class StudyAxis(BaseModel):
    field: str
    values: list[Any] | None = Field(description="The list given, or the range's values in a grid.")
    range: AxisRange | None = Field(description="The range given, if any.")


class StudyRun(BaseModel):
    """One job of a cell: one seed."""

    job_id: str
    seed: int
    status: JobStatusName
    step: int
    total_steps: int
    final_score: float | None
    mmer: float | None
    eval_score: float | None
    partial: bool = Field(description="Unfinished: the scores are of its points so far.")


class StudyCell(BaseModel):
    """One combination of the axes' values, over every seed."""

    index: int = Field(description="Position in the study; `cells=` of /profile names cells by it.")
    values: dict[str, Any] = Field(description="Axis field -> value.")
    label: str = Field(description='The values as one line: "model=gru, learning_rate=0.001".')
    env_id: str
    runs: list[StudyRun]
    progress: Progress
    partial: bool = Field(description="Some run is unfinished.")
    scores: ScoreAggregates
    is_best: bool = Field(description="The best cell of its env_id by the IQM of `metric`.")
    best_improvement: Interval | None = Field(
        description="P(a run of its env's best cell scores above a run of this one) on `metric`, with its "
        "interval; null for the best cell itself and for cells without scores."
    )


class BestCell(BaseModel):
    """The best cell of one env_id: the highest IQM of the study's `metric`."""

    env_id: str
    cell: int
    values: dict[str, Any]
    label: str
    n: int
    iqm: Interval
    mean: Interval


class StudySummary(BaseModel):
    """A study in `GET /api/studies`: its design and progress, no scores."""

    id: str
    name: str | None
    created_at: UtcDatetime
    search: Literal["grid", "random"]
    samples: int | None
    study_seed: int | None
    seeds: list[int]
    fields: list[str] = Field(description="The axes' fields, in order (the cells' columns).")
    cells_count: int
    jobs_count: int
    status: Literal["queued", "running", "finished"] = Field(
        description="queued: no job started; running: some job unfinished; finished: every job finished."
    )
    progress: Progress


class Study(StudySummary):
    """`GET /api/studies/{id}`: the design, every cell with its runs and scores, the best per env."""

    spec: dict[str, Any] = Field(description="The base spec as given.")
    axes: list[StudyAxis]
    metric: Metric = Field(description="The score that picks the best cells (query parameter `metric`).")
    confidence: float
    cells: list[StudyCell]
    best: list[BestCell] = Field(description="Per env_id, the cell with the highest IQM of `metric`.")


class StudyList(BaseModel):
    items: list[StudySummary]
    total: int
    limit: int
    offset: int


class ScoreRow(StudyRun):
    """One run in the scores export."""

    cell: int
    values: dict[str, Any]


class ScoresExport(BaseModel):
    """`GET /api/studies/{id}/scores.json`: every run's scores (CSV: the same, a column per axis)."""

    study_id: str
    fields: list[str]
    runs: list[ScoreRow]


class EnvBounds(BaseModel):
    """The raw scores that normalise to 0 and 1 in one env: the lowest and highest run of the study."""

    env_id: str
    low: float
    high: float
    runs: int


class ProfileCurve(BaseModel):
    """A performance profile: at each tau, the fraction of runs with a normalised score above it."""

    cells: list[int]
    values: dict[str, Any]
    label: str
    envs: list[str]
    runs: int
    partial: bool
    fractions: list[float] = Field(description="One per tau; empty when no run has a score.")
    lower: list[float]
    upper: list[float]


class ProfileOut(BaseModel):
    """`GET /api/studies/{id}/profile`: performance profiles on min-max normalised scores."""

    study_id: str
    metric: Metric
    by: Literal["cell", "config"]
    normalisation: str
    bounds: list[EnvBounds]
    taus: list[float]
    profiles: list[ProfileCurve]
