"""The JSON shapes of `POST /api/stats/bands`: seeds' curves on one grid in, a band per curve out."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

# What one request may ask for. A bootstrap of MAX_VALUES values (REPS resamples, the IQM)
# takes about a second on one core; the compare page sends a few thousand.
MAX_CURVES = 50
MAX_RUNS = 100
MAX_POINTS = 2000
MAX_VALUES = 60_000
REPS = 1000

RunValues = Annotated[
    list[float | None],
    Field(max_length=MAX_POINTS, description="One run's value at each grid point; null where it has none."),
]
Curve = Annotated[
    list[RunValues],
    Field(min_length=1, max_length=MAX_RUNS, description="The runs (seeds) of one curve, all on one grid."),
]


class BandsRequest(BaseModel):
    """Several curves, each the seeds of one variant resampled onto a common grid."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    curves: list[Curve] = Field(
        min_length=1,
        max_length=MAX_CURVES,
        description=f"Per curve, its runs' values (runs x points); at most {MAX_VALUES} values in all.",
    )
    statistic: Literal["mean", "iqm", "median"] = Field(
        "mean", description="The line drawn: the runs' mean, interquartile mean or median at each point."
    )
    method: Literal["bootstrap", "t"] = Field(
        "bootstrap",
        description=f"bootstrap: percentile interval of the statistic over {REPS} resamples of the runs "
        "at each point (fixed seed: the same curves give the same band); t: Student-t interval of the mean.",
    )
    confidence: float = Field(0.95, ge=0.5, le=0.999)
    clip: bool = Field(True, description="Keep the band within the runs' min and max at each point.")

    @field_validator("curves")
    @classmethod
    def _rectangular(cls, curves: list[list[list[float | None]]]) -> list[list[list[float | None]]]:
        for i, runs in enumerate(curves):
            width = len(runs[0])
            for j, run in enumerate(runs):
                if len(run) != width:
                    raise ValueError(
                        f"curve {i}: run {j} has {len(run)} values, run 0 has {width}; "
                        "the runs of a curve share one grid"
                    )
        total = sum(len(run) for runs in curves for run in runs)
        if total > MAX_VALUES:
            raise ValueError(f"{total} values in all; at most {MAX_VALUES}")
        return curves

    @field_validator("method")
    @classmethod
    def _t_is_for_the_mean(cls, method: str, info: ValidationInfo) -> str:
        statistic = info.data.get("statistic")
        if method == "t" and statistic not in (None, "mean"):
            raise ValueError(f"the t interval is for the mean, not the {statistic}")
        return method


class BandOut(BaseModel):
    """One curve's band: per grid point the statistic, its interval and the runs counted there."""

    center: list[float | None] = Field(description="Null where no run has a value.")
    lower: list[float | None]
    upper: list[float | None]
    n: list[int]


class BandsOut(BaseModel):
    """`POST /api/stats/bands`: a band per curve, in the order given, and how they were made."""

    statistic: Literal["mean", "iqm", "median"]
    method: Literal["bootstrap", "t"]
    confidence: float
    clip: bool
    reps: int = Field(description="Bootstrap resamples (0 for the t interval).")
    bands: list[BandOut]
