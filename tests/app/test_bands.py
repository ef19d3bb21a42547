"""`POST /api/stats/bands`: the compare page's band over seeds, as `rlcore.stats.curve_band` makes it.

In-process API (no worker, no server): the route only computes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.band_schemas import MAX_VALUES, REPS
from rlcore.stats import curve_band
from tests.conftest import backend_settings, user_tokens

# Three CartPole seeds near the cap of 500, one of them still short: a t-interval of their
# mean reaches past 500 (the README's old compare screenshot), a clipped band cannot.
CARTPOLE = [[20.0, 300.0, 500.0, 500.0], [22.0, 150.0, 480.0, 500.0], [18.0, 40.0, 200.0, None]]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    from app.main import create_app

    data_dir: Path = tmp_path_factory.mktemp("bands")
    with backend_settings("embedded", data_dir) as settings:
        app = create_app(settings, reaper=False)
        token, _ = user_tokens(settings)
        yield TestClient(app, headers={"Authorization": f"Bearer {token}"})


def post(client: TestClient, **body: Any) -> Any:
    response = client.post("/api/stats/bands", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_bootstrap_band_of_the_mean_is_curve_band_and_within_the_runs(client: TestClient) -> None:
    out = post(client, curves=[CARTPOLE])
    assert (out["statistic"], out["method"], out["reps"], out["clip"]) == ("mean", "bootstrap", REPS, True)
    band = out["bands"][0]
    values = np.array([[np.nan if v is None else v for v in run] for run in CARTPOLE])
    assert band == curve_band(values, reps=REPS, seed=0).to_dict()  # one implementation
    assert band["n"] == [3, 3, 3, 2]
    assert band["center"][0] == pytest.approx(20.0) and band["center"][3] == pytest.approx(500.0)
    for i, n in enumerate(band["n"]):
        seen = [run[i] for run in CARTPOLE if run[i] is not None]
        assert min(seen) <= band["lower"][i] <= band["center"][i] <= band["upper"][i] <= max(seen)
        assert len(seen) == n
    # Fixed seed: the same curves give the same band (a live redraw does not jitter).
    assert post(client, curves=[CARTPOLE])["bands"][0] == band


def test_t_interval_is_clipped_unless_asked_not_to(client: TestClient) -> None:
    clipped = post(client, curves=[CARTPOLE], method="t")["bands"][0]
    raw = post(client, curves=[CARTPOLE], method="t", clip=False)["bands"][0]
    assert raw["upper"][2] > 500 and raw["lower"][2] < 200  # mean 393, s 166: +- 412
    assert clipped["upper"][2] == pytest.approx(500.0) and clipped["lower"][2] == pytest.approx(200.0)
    assert post(client, curves=[CARTPOLE], method="t")["reps"] == 0


def test_iqm_one_run_and_no_run(client: TestClient) -> None:
    runs = [[1.0, 5.0, None], [2.0, None, None], [3.0, None, None], [100.0, None, None]]
    band = post(client, curves=[runs, [[7.0]]], statistic="iqm")["bands"]
    # IQM of 1, 2, 3, 100: the mean of the middle two.
    assert band[0]["center"][0] == pytest.approx(2.5)
    assert band[0]["lower"][1] == band[0]["upper"][1] == 5.0 and band[0]["n"][1] == 1
    assert band[0]["center"][2] is None and band[0]["upper"][2] is None and band[0]["n"][2] == 0
    assert band[1] == {"center": [7.0], "lower": [7.0], "upper": [7.0], "n": [1]}


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"curves": [[[1.0, 2.0], [1.0]]]}, "curves", "run 1 has 1 values"),
        ({"curves": [[[1.0]]], "statistic": "iqm", "method": "t"}, "method", "for the mean"),
        ({"curves": []}, "curves", "at least 1"),
        ({"curves": [[]]}, "curves", "at least 1"),
        ({"curves": [[[0.0] * 1000] * 100] * 2}, "curves", f"at most {MAX_VALUES}"),
        ({"curves": [[[1.0]]], "confidence": 1.0}, "confidence", "less than or equal"),
    ],
)
def test_bad_requests_are_422_naming_the_field(client: TestClient, body: Any, field: str, says: str) -> None:
    response = client.post("/api/stats/bands", json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["message"] and says in response.json()["message"]


def test_non_finite_values_and_no_token_are_refused(client: TestClient) -> None:
    body = b'{"curves": [[[1.0, Infinity]]]}'
    response = client.post("/api/stats/bands", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    anonymous = client.post("/api/stats/bands", json={"curves": [[[1.0]]]}, headers={"Authorization": ""})
    assert anonymous.status_code == 401
