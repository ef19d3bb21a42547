"""`/api/stats/bands`: the compare page's band over seeds, by `rlcore.stats.curve_band`.

The dashboard smooths and resamples the runs onto one grid (that depends on its sliders);
the band's statistics stay here, in the one implementation the studies use too.
"""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter

from app.auth import UserDep
from app.band_schemas import REPS, BandOut, BandsOut, BandsRequest
from app.schemas import error_responses
from rlcore.stats import curve_band

router = APIRouter(prefix="/api/stats", tags=["stats"], responses=error_responses(400, 401, 403, 413, 422))


@router.post("/bands", response_model=BandsOut)
def bands(payload: BandsRequest, user: UserDep) -> BandsOut:
    """Per curve and grid point: the runs' mean (or IQM, median) with a 95% band, clipped to the
    runs' min and max there. A point with one run has a zero-width band; with none, nulls."""
    out = []
    for runs in payload.curves:
        values = np.array([[np.nan if v is None else v for v in run] for run in runs], dtype=np.float64)
        band = curve_band(
            values,
            statistic=payload.statistic,
            method=payload.method,
            confidence=payload.confidence,
            reps=REPS,
            seed=0,
            clip=payload.clip,
        )
        out.append(BandOut.model_validate(band.to_dict()))
    return BandsOut(
        statistic=payload.statistic,
        method=payload.method,
        confidence=payload.confidence,
        clip=payload.clip,
        reps=REPS if payload.method == "bootstrap" else 0,
        bands=out,
    )
