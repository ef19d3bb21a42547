"""A study's cells from its axes (grid or random search), each cell x seed validated as a TrainSpec.

Nothing here touches the database: the route stores the study only once every cell of
it is valid and the whole fits the quotas, so a study with one bad cell queues no job.
"""

from __future__ import annotations

import itertools
import json
import math
import secrets
from dataclasses import dataclass
from types import NoneType, UnionType
from typing import Any, Literal, Union, get_args, get_origin

import numpy as np
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from app.quotas import check_spec, check_study_size
from app.settings import Settings
from app.studies.schemas import AxisRange, AxisValue, StudyCreate
from rlcore.spec import TrainSpec

MAX_ERRORS = 20  # a study of 1000 bad cells says what is wrong with the first ones
SIGNIFICANT_DIGITS = 6  # of float values from a range: 0.001, not 0.0010000000000000002
# Random search redraws a cell it already has; it gives up after this many draws per sample.
DRAWS_PER_SAMPLE = 50
MAX_LABEL_VALUE = 40  # characters of a value an error message quotes

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Design:
    """What a study request makes: the cells' axis values and, per cell, one spec per seed."""

    cells: list[dict[str, AxisValue]]
    specs: list[list[TrainSpec]]
    study_seed: int | None


def _error(loc: Loc, message: str, value: Any = None) -> dict[str, Any]:
    return {"type": "value_error", "loc": loc, "msg": message, "input": value}


def numeric_kind(field: str) -> Literal["int", "float"] | None:
    """Whether a TrainSpec field holds an int or a float (None or not, optional or not); None otherwise."""
    annotation = TrainSpec.model_fields[field].annotation
    parts = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,)
    kinds = {p for p in parts if p is not NoneType}
    if kinds == {int}:
        return "int"
    return "float" if kinds == {float} else None


def _rounded(values: list[float], kind: Literal["int", "float"]) -> list[int | float]:
    """Values as the field takes them, repeats dropped, in order."""
    if kind == "int":
        return list(dict.fromkeys(round(v) for v in values))
    return list(dict.fromkeys(float(f"{v:.{SIGNIFICANT_DIGITS}g}") for v in values))


def range_values(field: str, axis: AxisRange) -> list[int | float]:
    """A range's `count` grid values (fewer when an integer field's rounding repeats some)."""
    kind = numeric_kind(field) or "float"
    count = axis.count or 1
    if axis.spacing == "log":
        raw = np.geomspace(axis.low, axis.high, count)
    else:
        raw = np.linspace(axis.low, axis.high, count)
    return _rounded([float(v) for v in raw], kind)


def axis_values(field: str, axis: list[AxisValue] | AxisRange) -> list[AxisValue]:
    """An axis's values in a grid: the list itself, or the range's values."""
    return range_values(field, axis) if isinstance(axis, AxisRange) else list(axis)


def check_axes(payload: StudyCreate) -> None:
    """422 for axes that cannot make cells: unknown fields, a range over a non-number, grid/random options."""
    errors = []
    if "seed" in payload.spec:
        errors.append(_error(("body", "spec", "seed"), "set by `seeds` (one job per seed); leave it out"))
    for field, axis in payload.axes.items():
        loc: Loc = ("body", "axes", field)
        if field == "seed":
            errors.append(_error(loc, "seeds are not an axis: list them in `seeds`"))
        elif field not in TrainSpec.model_fields:
            errors.append(
                _error(loc, f"not a spec field; fields: {', '.join(TrainSpec.model_fields)}", field)
            )
        elif isinstance(axis, AxisRange):
            if numeric_kind(field) is None:
                errors.append(
                    _error(loc, "a range needs a numeric field (int or float); give a list of values")
                )
            elif not math.isfinite(axis.high - axis.low):
                errors.append(_error(loc, "high - low must be a finite number"))
            elif payload.search == "grid" and axis.count is None:
                errors.append(_error((*loc, "count"), "a range in a grid needs count (how many values)"))
    if payload.search == "random" and payload.samples is None:
        errors.append(_error(("body", "samples"), "random search needs samples (how many cells to draw)"))
    for name in ("samples", "study_seed"):
        if payload.search == "grid" and getattr(payload, name) is not None:
            errors.append(_error(("body", name), "only for search: random", getattr(payload, name)))
    if errors:
        raise RequestValidationError(errors)


def grid_cells(axes: dict[str, list[AxisValue] | AxisRange]) -> list[dict[str, AxisValue]]:
    """Every combination of the axes' values, the first axis varying slowest."""
    fields = list(axes)
    columns = [axis_values(field, axes[field]) for field in fields]
    return [dict(zip(fields, combo, strict=True)) for combo in itertools.product(*columns)]


def grid_size(axes: dict[str, list[AxisValue] | AxisRange]) -> int:
    """Cells in the grid, counted before it is made (a huge grid is refused without building it)."""
    return math.prod(len(axis_values(f, a)) if isinstance(a, AxisRange) else len(a) for f, a in axes.items())


def _draw(field: str, axis: list[AxisValue] | AxisRange, rng: np.random.Generator) -> AxisValue:
    if not isinstance(axis, AxisRange):
        return axis[int(rng.integers(len(axis)))]
    if axis.spacing == "log":
        value = math.exp(rng.uniform(math.log(axis.low), math.log(axis.high)))
    else:
        value = float(rng.uniform(axis.low, axis.high))
    return _rounded([min(max(value, axis.low), axis.high)], numeric_kind(field) or "float")[0]


def random_cells(
    axes: dict[str, list[AxisValue] | AxisRange], samples: int, seed: int
) -> list[dict[str, AxisValue]]:
    """`samples` distinct cells, each axis drawn on its own: a list's values uniformly, a range
    uniformly (linear) or log-uniformly (log). The same seed draws the same cells."""
    rng = np.random.default_rng(seed)
    if all(not isinstance(a, AxisRange) for a in axes.values()) and grid_size(axes) < samples:
        raise RequestValidationError(
            [_error(("body", "samples"), f"the axes have only {grid_size(axes)} distinct cells", samples)]
        )
    cells: dict[str, dict[str, AxisValue]] = {}
    for _ in range(samples * DRAWS_PER_SAMPLE):
        if len(cells) == samples:
            break
        values = {field: _draw(field, axis, rng) for field, axis in axes.items()}
        cells.setdefault(json.dumps(values, sort_keys=True), values)
    if len(cells) < samples:
        raise RequestValidationError(
            [
                _error(
                    ("body", "samples"),
                    f"only {len(cells)} distinct cells in {samples * DRAWS_PER_SAMPLE} draws; "
                    "ask for fewer samples or widen the axes",
                    samples,
                )
            ]
        )
    return list(cells.values())


def cell_label(values: dict[str, Any]) -> str:
    """ "model=gru, learning_rate=0.001": a cell's values as one line."""
    return ", ".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in values.items()) or "base"


def _short(value: AxisValue) -> AxisValue:
    text = str(value)
    return value if len(text) <= MAX_LABEL_VALUE else text[: MAX_LABEL_VALUE - 3] + "..."


def _located(error: dict[str, Any], values: dict[str, Any], index: int) -> dict[str, Any]:
    """A spec error of cell `index`, placed on its axis when the field is one, its message naming the cell."""
    loc = tuple(error.get("loc", ()))
    if loc[:2] == ("body", "spec") and len(loc) > 2 and loc[2] in values:
        loc = ("body", "axes", *loc[2:])
    label = cell_label({k: _short(v) for k, v in values.items()})
    message = f"in cell {index} ({label}): {error['msg']}"
    return {**error, "loc": loc, "msg": message}


def cell_specs(
    base: dict[str, Any], cells: list[dict[str, AxisValue]], seeds: list[int], settings: Settings
) -> list[list[TrainSpec]]:
    """Every cell x seed as a TrainSpec within the per-job limits; 422 naming the bad cells and fields."""
    errors: list[dict[str, Any]] = []
    specs: list[list[TrainSpec]] = []
    first_cell: dict[str, int] = {}  # each spec (but its seed) -> the first cell that made it
    for index, values in enumerate(cells):
        if len(errors) >= MAX_ERRORS:
            break
        try:
            row = [TrainSpec.model_validate({**base, **values, "seed": seed}) for seed in seeds]
            check_spec(settings, row[0])
        except ValidationError as error:
            for e in error.errors(include_url=False, include_context=False):
                errors.append(_located({**e, "loc": ("body", "spec", *e["loc"])}, values, index))
            continue
        except RequestValidationError as error:
            errors.extend(_located(e, values, index) for e in error.errors())
            continue
        key = row[0].model_dump_json(exclude={"seed"})
        if key in first_cell:
            message = f"cells {first_cell[key]} and {index} make the same spec ({cell_label(values)})"
            errors.append(_error(("body", "axes"), message))
            continue
        first_cell[key] = index
        specs.append(row)
    if errors:
        raise RequestValidationError(errors[:MAX_ERRORS])
    return specs


def design(payload: StudyCreate, settings: Settings) -> Design:
    """The study's cells and specs, or 422 naming what is wrong: every check before anything is stored."""
    check_axes(payload)
    if payload.search == "grid":
        check_study_size(settings, grid_size(payload.axes), len(payload.seeds), ("body", "axes"))
        cells, seed = grid_cells(payload.axes), None
    else:
        assert payload.samples is not None  # check_axes made sure
        check_study_size(settings, payload.samples, len(payload.seeds), ("body", "samples"))
        seed = payload.study_seed if payload.study_seed is not None else secrets.randbelow(2**31)
        cells = random_cells(payload.axes, payload.samples, seed)
    return Design(cells, cell_specs(payload.spec, cells, payload.seeds, settings), seed)
