"""Studies: grid and random cells, validation of every cell before anything is queued, quotas,
cancel and delete, ownership, scores and statistics from known metrics, export, the CLI.

Most tests use an API with no worker (`api`), so a study's jobs stay queued and the test
writes their points itself, as the worker's sink does (`insert_points`), and moves them
through the same status transitions the worker makes (`record_status`). One test runs
tiny real jobs through the real worker (`stack`), and the CLI test too.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from sqlalchemy import func, select

from app.db import session_scope
from app.job_states import record_status
from app.models import Job, JobStatus, MetricPoint
from app.settings import Settings
from app.studies.design import design, range_values
from app.studies.schemas import AxisRange, StudyCreate
from app.tokens import create_token
from rlcore import stats
from tests.conftest import (
    ROOT,
    TINY_SPEC,
    Stack,
    ThreadedServer,
    backend_settings,
    finish_job,
    sse_events,
    start_job,
)

BASE = {**TINY_SPEC, "total_steps": 2000}
MAX_ACTIVE = 12
MAX_STUDY = 16


@dataclass
class Api:
    """An API with no worker: jobs stay queued until a test moves them."""

    settings: Settings
    url: str
    app: Any
    clients: list[httpx.Client] = field(default_factory=list)

    def user(self) -> httpx.Client:
        """A client for a new user of the test's own, so quotas start from zero."""
        with session_scope(self.settings.database_url) as session:
            token = create_token(session, f"user-{uuid.uuid4().hex[:8]}", "tests")
        client = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        self.clients.append(client)
        return client


@pytest.fixture(scope="module", params=["embedded", "postgres"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    from app.main import create_app

    data_dir = tmp_path_factory.mktemp(f"studies-{request.param}")
    limits = {"max_active_jobs": MAX_ACTIVE, "max_study_size": MAX_STUDY}
    with backend_settings(request.param, data_dir, **limits) as settings:
        app = create_app(settings, reaper=False)
        server = ThreadedServer(app)
        server.start()
        running = Api(settings, server.url, app)
        try:
            yield running
        finally:
            for client in running.clients:
                client.close()
            server.stop()
        assert not app.state.server_errors, f"the API answered 5xx: {app.state.server_errors}"


def post_study(client: httpx.Client, expect: int = 201, **body: Any) -> dict[str, Any]:
    response = client.post("/api/studies", json={"spec": BASE, **body})
    assert response.status_code == expect, response.text
    return response.json()


def nothing_queued(client: httpx.Client) -> None:
    assert client.get("/api/studies").json()["total"] == 0
    assert client.get("/api/jobs").json()["total"] == 0


# -- design -----------------------------------------------------------------------------------


def test_ranges_give_rounded_distinct_values() -> None:
    log = AxisRange(low=1e-4, high=1e-2, count=3, spacing="log")
    assert range_values("learning_rate", log) == [0.0001, 0.001, 0.01]
    assert range_values("gamma", AxisRange(low=0.9, high=0.99, count=4)) == [0.9, 0.93, 0.96, 0.99]
    assert range_values("hidden_size", AxisRange(low=16, high=256, count=5, spacing="log")) == [
        16,
        32,
        64,
        128,
        256,
    ]
    # An integer field's rounding repeats values: they are dropped.
    assert range_values("num_layers", AxisRange(low=1, high=2, count=5)) == [1, 2]
    assert range_values("hidden_size", AxisRange(low=32, high=64)) == [32]  # count 1: low


def test_the_example_study_is_valid_and_fits_the_default_quota() -> None:
    body = yaml.safe_load((ROOT / "examples" / "study-memory-cartpole.yaml").read_text())
    plan = design(StudyCreate.model_validate(body), Settings())
    jobs = sum(len(specs) for specs in plan.specs)
    assert len(plan.cells) == 6 and jobs == 18 <= Settings().max_active_jobs
    assert {c["model"] for c in plan.cells} == {"mlp", "gru", "lstm"}


# -- creation -----------------------------------------------------------------------------------


def test_grid_makes_every_combination_and_links_its_jobs(api: Api) -> None:
    client = api.user()
    axes = {
        "model": ["mlp", "gru"],
        "learning_rate": {"low": 1e-3, "high": 1e-2, "count": 3, "spacing": "log"},
    }
    study = post_study(client, axes=axes, seeds=[4, 7], name="grid")
    assert (study["cells_count"], study["jobs_count"]) == (6, 12)
    assert study["fields"] == ["model", "learning_rate"] and study["status"] == "queued"
    assert [c["values"] for c in study["cells"]] == [
        {"model": m, "learning_rate": lr} for m in ("mlp", "gru") for lr in (0.001, 0.00316228, 0.01)
    ]
    assert study["axes"][1]["values"] == [0.001, 0.00316228, 0.01]
    assert study["progress"] == {
        "steps": 0,
        "total_steps": 12 * 2000,
        "percent": 0.0,
        "jobs": {"queued": 12, "running": 0, "succeeded": 0, "failed": 0, "cancelled": 0},
    }
    cell = study["cells"][4]
    assert cell["label"] == "model=gru, learning_rate=0.00316228" and cell["env_id"] == "CartPole-v0"
    assert [r["seed"] for r in cell["runs"]] == [4, 7]
    job = client.get(f"/api/jobs/{cell['runs'][1]['job_id']}").json()
    assert job["study_id"] == study["id"] and job["name"] == "grid model=gru, learning_rate=0.00316228 seed 7"
    assert (job["spec"]["model"], job["spec"]["learning_rate"], job["spec"]["seed"]) == ("gru", 0.00316228, 7)
    listed = client.get("/api/jobs", params={"study": study["id"], "limit": 100}).json()
    assert listed["total"] == 12
    assert {j["id"] for j in listed["items"]} == {r["job_id"] for c in study["cells"] for r in c["runs"]}
    page = client.get("/api/studies", params={"limit": 1}).json()
    assert page["total"] == 1 and page["items"][0]["id"] == study["id"] and "cells" not in page["items"][0]


def test_an_axis_over_algo_gives_each_cell_its_algorithms_defaults(api: Api) -> None:
    client = api.user()
    spec = {"env_id": "CartPole-v1", "total_steps": 1000, "num_envs": 4, "rollout_length": 16}
    study = client.post("/api/studies", json={"spec": spec, "axes": {"algo": ["a2c", "ppo"]}, "seeds": [0]})
    assert study.status_code == 201, study.text
    specs = [client.get(f"/api/jobs/{c['runs'][0]['job_id']}").json()["spec"] for c in study.json()["cells"]]
    assert "epochs" not in specs[0] and specs[1]["epochs"] == 10  # a2c has none, ppo its own


def test_random_search_draws_distinct_cells_reproducibly(api: Api) -> None:
    axes = {
        "model": ["mlp", "gru", "lstm"],
        "learning_rate": {"low": 1e-4, "high": 1e-1, "spacing": "log"},
        "hidden_size": {"low": 8, "high": 128},
    }
    body = {"axes": axes, "seeds": [0], "search": "random", "samples": 5}
    first = post_study(api.user(), **body, study_seed=11)
    again = post_study(api.user(), **body, study_seed=11)
    other = post_study(api.user(), **body)  # no seed given: one is drawn and returned
    cells = [c["values"] for c in first["cells"]]
    assert len(cells) == 5 == first["cells_count"] == first["jobs_count"]
    assert cells == [c["values"] for c in again["cells"]]
    assert isinstance(other["study_seed"], int) and cells != [c["values"] for c in other["cells"]]
    assert len({tuple(c.values()) for c in cells}) == 5
    for values in cells:
        assert values["model"] in axes["model"]
        assert 1e-4 <= values["learning_rate"] <= 1e-1
        assert isinstance(values["hidden_size"], int) and 8 <= values["hidden_size"] <= 128
    # The drawn seed reproduces the draw.
    replay = post_study(api.user(), **body, study_seed=other["study_seed"])
    assert [c["values"] for c in replay["cells"]] == [c["values"] for c in other["cells"]]
    assert [a["range"] for a in first["axes"]][1] == {
        "low": 1e-4,
        "high": 0.1,
        "count": None,
        "spacing": "log",
    }


@pytest.mark.parametrize(
    ("body", "where", "words"),
    [
        # One bad cell of four: bptt_length 100 > rollout_length 50.
        (
            {"axes": {"model": ["mlp", "gru"], "bptt_length": [10, 100]}},
            "spec",
            "in cell 1 (model=mlp, bptt_length=100)",
        ),
        ({"axes": {"model": ["mlp", "transformer"]}}, "axes.model", "in cell 1 (model=transformer)"),
        ({"axes": {"hidden_size": [64, 4096]}}, "axes.hidden_size", "less than or equal to 2048"),
        (
            {"axes": {"algo": ["reinforce", "a2c"], "epochs": [1]}},
            "axes.epochs",
            "does not apply to reinforce",
        ),
        ({"axes": {"learning_rate": [0.01, 0.01]}}, "axes", "cells 0 and 1 make the same spec"),
        ({"axes": {"knob": [1]}}, "axes.knob", "not a spec field"),
        ({"axes": {"seed": [1, 2]}}, "axes.seed", "seeds"),
        ({"spec": {**BASE, "seed": 3}}, "spec.seed", "seeds"),
        ({"axes": {"model": {"low": 1, "high": 2, "count": 2}}}, "axes.model", "numeric field"),
        ({"axes": {"learning_rate": {"low": 0.1, "high": 0.2}}}, "axes.learning_rate.count", "count"),
        (
            {"axes": {"learning_rate": {"low": 0.0, "high": 0.2, "count": 2, "spacing": "log"}}},
            "axes.learning_rate.range",
            "low > 0",
        ),
        (
            {"axes": {"learning_rate": {"low": 0.2, "high": 0.1, "count": 2}}},
            "axes.learning_rate.range",
            "high must not",
        ),
        ({"axes": {"hidden_size": {"low": -1e308, "high": 1e308, "count": 3}}}, "axes.hidden_size", "finite"),
        ({"axes": {"model": ["mlp"]}, "search": "random"}, "samples", "needs samples"),
        ({"axes": {"model": ["mlp"]}, "samples": 2}, "samples", "only for search: random"),
        (
            {"axes": {"model": ["mlp", "gru"]}, "search": "random", "samples": 3},
            "samples",
            "only 2 distinct cells",
        ),
        ({"axes": {"total_steps": [2000, 10**9]}}, "axes.total_steps", "in cell 1"),
        ({"seeds": [1, 1]}, "seeds", "repeat"),
        ({"search": "bayes"}, "search", ""),
    ],
)
def test_a_bad_study_is_422_naming_the_cell_and_field_and_queues_nothing(
    api: Api, body: dict[str, Any], where: str, words: str
) -> None:
    client = api.user()
    response = client.post("/api/studies", json={"spec": BASE, "seeds": [0, 1], **body})
    assert response.status_code == 422, response.text
    message = response.json()["message"]
    assert f"{where}: " in message and words in message, message
    nothing_queued(client)


def test_study_size_and_quota(api: Api) -> None:
    client = api.user()
    axes = {"learning_rate": [0.01, 0.02, 0.03]}
    # Over the study cap (RLSERVE_MAX_STUDY_SIZE, 16 here): 18 jobs.
    response = client.post("/api/studies", json={"spec": BASE, "axes": axes, "seeds": list(range(6))})
    assert response.status_code == 422, response.text
    assert "3 cells x 6 seeds = 18 jobs; a study holds at most 16" in response.json()["message"]
    # Within the cap but over what the user may ever have queued (12): never accepted, so 422.
    response = client.post("/api/studies", json={"spec": BASE, "axes": axes, "seeds": list(range(5))})
    assert response.status_code == 422, response.text
    assert "RLSERVE_MAX_ACTIVE_JOBS" in response.json()["message"]
    response = client.post(
        "/api/studies", json={"spec": BASE, "axes": axes, "search": "random", "samples": 20, "seeds": [0]}
    )
    assert response.status_code == 422 and "samples: " in response.json()["message"]
    nothing_queued(client)
    # Fits alone, not beside the user's 9 queued jobs: 429, and nothing of it stored.
    post_study(client, axes=axes, seeds=[0, 1, 2])
    response = client.post("/api/studies", json={"spec": BASE, "axes": axes, "seeds": [5, 6]})
    assert response.status_code == 429, response.text
    assert client.get("/api/studies").json()["total"] == 1
    assert client.get("/api/jobs").json()["total"] == 9


def test_another_users_study_is_404_everywhere(api: Api) -> None:
    alice, bob = api.user(), api.user()
    sid = post_study(alice, axes={"model": ["mlp"]}, seeds=[0])["id"]
    for method, path in [
        ("GET", f"/api/studies/{sid}"),
        ("GET", f"/api/studies/{sid}/profile"),
        ("GET", f"/api/studies/{sid}/scores.csv"),
        ("GET", f"/api/studies/{sid}/scores.json"),
        ("POST", f"/api/studies/{sid}/cancel"),
        ("DELETE", f"/api/studies/{sid}"),
        ("GET", "/api/studies/not-a-study"),
        ("GET", "/api/studies/" + "a" * 33),
    ]:
        assert bob.request(method, path).status_code == 404, (method, path)
    assert bob.get("/api/events", params={"study": sid}).status_code == 404
    assert bob.get("/api/studies").json()["total"] == 0
    assert alice.get(f"/api/studies/{sid}").status_code == 200


# -- cancel and delete --------------------------------------------------------------------------


def test_cancel_then_delete_removes_the_study_its_jobs_points_and_files(api: Api) -> None:
    client = api.user()
    study = post_study(client, axes={"model": ["mlp", "gru"]}, seeds=[0, 1])
    sid = study["id"]
    ids = [r["job_id"] for c in study["cells"] for r in c["runs"]]
    finish_job(api.settings, ids[0], [(100, {"charts/episodic_return": 20.0, "charts/episodes": 3.0})])
    start_job(api.settings, ids[1], [(100, {"charts/episodic_return": 15.0, "charts/episodes": 2.0})])
    for job_id in ids:
        folder = api.settings.job_dir(job_id)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "policy.safetensors").write_bytes(b"x")

    response = client.delete(f"/api/studies/{sid}")
    assert response.status_code == 409 and "cancel the study first" in response.json()["detail"]

    cancelled = client.post(f"/api/studies/{sid}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    runs = {r["job_id"]: r for c in cancelled.json()["cells"] for r in c["runs"]}
    assert runs[ids[0]]["status"] == "succeeded"  # finished jobs stay as they are
    assert [runs[i]["status"] for i in ids[2:]] == ["cancelled", "cancelled"]
    running = client.get(f"/api/jobs/{ids[1]}").json()
    assert running["status"] == "running" and running["cancel_requested"]  # stops within seconds
    assert client.post(f"/api/studies/{sid}/cancel").status_code == 200  # again: a no-op

    # The worker sees the flag and stops the job, as a cancelled run ends.
    with session_scope(api.settings.database_url) as session:
        job = session.get(Job, ids[1])
        assert job is not None
        record_status(session, job, JobStatus.cancelled, "cancelled at step 100")
    assert client.get(f"/api/studies/{sid}").json()["status"] == "finished"
    assert client.delete(f"/api/studies/{sid}").status_code == 204
    assert client.get(f"/api/studies/{sid}").status_code == 404
    for job_id in ids:
        assert client.get(f"/api/jobs/{job_id}").status_code == 404
        assert not api.settings.job_dir(job_id).exists()
    with session_scope(api.settings.database_url) as session:
        left = session.scalar(
            select(func.count()).select_from(MetricPoint).where(MetricPoint.job_id.in_(ids))
        )
    assert left == 0
    assert client.get("/api/studies").json()["total"] == 0


# -- scores ---------------------------------------------------------------------------------------


def curve(returns: list[float], episodes: list[float], step: int = 200) -> list[tuple[int, dict[str, float]]]:
    """Points every `step` env steps with these mean returns and episode counts."""
    return [
        ((i + 1) * step, {"charts/episodic_return": r, "charts/episodes": e, "losses/entropy": 0.5})
        for i, (r, e) in enumerate(zip(returns, episodes, strict=True))
    ]


# Ten points over 2000 steps (the last 10% of training: the points at 1800 < step <= 2000,
# i.e. the last one). Episodes 5 + 5 pool into one MMER group of 10, the rest are 10 each.
EPISODES = [5.0, 5.0, 10, 10, 10, 10, 10, 10, 10, 10]


def known_runs() -> dict[int, list[float]]:
    """Per cell, the returns of each seed's points: cell 0 has 4 seeds, cell 1 three."""
    return {
        0: [
            [10, 30, 20, 25, 90, 40, 50, 60, 70, 80],
            [10, 10, 20, 30, 40, 50, 60, 70, 80, 100],
            [50, 150, 20, 20, 20, 20, 20, 20, 20, 30],
            [10, 10, 10, 10, 10, 10, 10, 10, 10, 200],
        ],
        1: [
            [5, 5, 5, 5, 5, 5, 5, 5, 5, 5],
            [10, 10, 10, 10, 10, 10, 10, 10, 10, 12],
            [1, 1, 1, 1, 1, 1, 1, 1, 1, 2],
        ],
    }


def expected_final(returns: list[float]) -> float:
    return returns[-1]  # only the last point is in the last 10% of 2000 steps


def expected_mmer(returns: list[float]) -> float:
    pooled = (returns[0] * 5 + returns[1] * 5) / 10
    return max([pooled, *returns[2:]])


def iqm(values: list[float]) -> float:
    cut = int(0.25 * len(values))
    kept = sorted(values)[cut : len(values) - cut]
    return sum(kept) / len(kept)


def test_scores_and_statistics_from_known_metrics(api: Api) -> None:
    client = api.user()
    runs = known_runs()
    study = post_study(client, axes={"model": ["mlp", "gru"]}, seeds=[0, 1, 2, 3])
    cells = study["cells"]
    # Cell 1's last seed keeps running with no point yet; its others finish.
    jobs = {c["index"]: [r["job_id"] for r in c["runs"]] for c in cells}
    for index, returns_per_seed in runs.items():
        for job_id, returns in zip(jobs[index], returns_per_seed, strict=False):
            finish_job(api.settings, job_id, curve(returns, EPISODES))
    # An eval point on one run: the eval score is its last evaluation.
    with session_scope(api.settings.database_url) as session:
        session.execute(
            MetricPoint.__table__.update()
            .where(MetricPoint.job_id == jobs[0][0], MetricPoint.step == 2000)
            .values(values={**curve(runs[0][0], EPISODES)[-1][1], "eval/episodic_return": 77.0})
        )
        job = session.get(Job, jobs[0][0])
        assert job is not None
        record_status(session, job, JobStatus.succeeded, "scored again with its eval point")
    start_job(api.settings, jobs[1][3], curve([40, 60], [10, 10]))  # running: scores so far

    view = client.get(f"/api/studies/{study['id']}")
    assert view.status_code == 200, view.text
    got = view.json()
    assert got["status"] == "running" and got["metric"] == "final" and got["confidence"] == 0.95
    by_index = {c["index"]: c for c in got["cells"]}
    for index, returns_per_seed in runs.items():
        cell = by_index[index]
        finals = [expected_final(r) for r in returns_per_seed]
        mmers = [expected_mmer(r) for r in returns_per_seed]
        assert [r["final_score"] for r in cell["runs"][: len(finals)]] == pytest.approx(finals)
        assert [r["mmer"] for r in cell["runs"][: len(mmers)]] == pytest.approx(mmers)
        if index == 1:
            live = cell["runs"][3]
            # Running: the last 10% of its 400 steps so far is its last point; MMER its best.
            assert live["partial"] and live["status"] == "running"
            assert (live["final_score"], live["mmer"]) == (60.0, 60.0)
            finals.append(60.0)
            mmers.append(60.0)
        for name, values in (("final", finals), ("mmer", mmers)):
            agg = cell["scores"][name]
            assert agg["n"] == len(values)
            assert agg["mean"]["point"] == pytest.approx(np.mean(values))
            assert agg["iqm"]["point"] == pytest.approx(iqm(values))
            for key in ("mean", "iqm"):
                assert min(values) <= agg[key]["low"] <= agg[key]["point"] <= agg[key]["high"] <= max(values)
    assert by_index[0]["runs"][0]["eval_score"] == 77.0 and by_index[0]["scores"]["eval"]["n"] == 1
    assert by_index[1]["scores"]["eval"] == {"n": 0, "mean": None, "iqm": None}
    assert by_index[1]["partial"] and not by_index[0]["partial"]
    # IQM of cell 0's finals (80, 100, 30, 200): mean of 80 and 100.
    assert by_index[0]["scores"]["final"]["iqm"]["point"] == 90.0

    # The best cell of the env by IQM, and P(best beats the other) = U / (n m).
    assert got["best"] == [
        {
            "env_id": "CartPole-v0",
            "cell": 0,
            "values": {"model": "mlp"},
            "label": "model=mlp",
            "n": 4,
            "iqm": by_index[0]["scores"]["final"]["iqm"],
            "mean": by_index[0]["scores"]["final"]["mean"],
        }
    ]
    assert by_index[0]["is_best"] and not by_index[1]["is_best"] and by_index[0]["best_improvement"] is None
    best_finals = [80.0, 100.0, 30.0, 200.0]
    other_finals = [5.0, 12.0, 2.0, 60.0]
    wins = sum((a > b) + 0.5 * (a == b) for a in best_finals for b in other_finals) / 16
    improvement = by_index[1]["best_improvement"]
    assert improvement["point"] == pytest.approx(wins)
    assert improvement["low"] <= improvement["point"] <= improvement["high"]
    # By MMER the best is still cell 0; the job view carries its own scores.
    assert client.get(f"/api/studies/{study['id']}", params={"metric": "mmer"}).json()["best"][0]["cell"] == 0
    job = client.get(f"/api/jobs/{jobs[0][1]}").json()
    assert (job["final_score"], job["mmer"], job["scores_partial"]) == (100.0, 100.0, False)
    live_job = client.get(f"/api/jobs/{jobs[1][3]}").json()
    assert (live_job["final_score"], live_job["scores_partial"]) == (60.0, True)
    listed = {j["id"]: j for j in client.get("/api/jobs", params={"study": study["id"]}).json()["items"]}
    assert listed[jobs[1][3]]["final_score"] is None and listed[jobs[0][1]]["mmer"] == 100.0

    # Exports: every run, its cell and axis values, seed, job, status and scores.
    exported = client.get(f"/api/studies/{study['id']}/scores.json")
    assert exported.status_code == 200 and "attachment" in exported.headers["content-disposition"]
    body = exported.json()
    assert body["study_id"] == study["id"] and body["fields"] == ["model"] and len(body["runs"]) == 8
    row = next(r for r in body["runs"] if r["job_id"] == jobs[0][2])
    assert row == {
        "cell": 0,
        "values": {"model": "mlp"},
        "job_id": jobs[0][2],
        "seed": 2,
        "status": "succeeded",
        "step": 2000,
        "total_steps": 2000,
        "final_score": 30.0,
        "mmer": 100.0,
        "eval_score": None,
        "partial": False,
    }
    response = client.get(f"/api/studies/{study['id']}/scores.csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    columns = "cell model seed job_id status step total_steps final_score mmer eval_score partial"
    assert list(rows[0]) == columns.split()
    assert len(rows) == 8
    by_job = {r["job_id"]: r for r in rows}
    assert by_job[jobs[0][0]]["eval_score"] == "77.0" and by_job[jobs[0][1]]["eval_score"] == ""
    assert by_job[jobs[1][3]]["partial"] == "true" and by_job[jobs[1][3]]["final_score"] == "60.0"
    assert [float(by_job[j]["final_score"]) for j in jobs[0]] == best_finals
    assert by_job[jobs[1][2]]["model"] == "gru" and by_job[jobs[1][2]]["cell"] == "1"

    # Profiles: min-max per env over every run (2 to 200), the fraction of runs above tau.
    profile = client.get(f"/api/studies/{study['id']}/profile", params={"points": 5})
    assert profile.status_code == 200, profile.text
    prof = profile.json()
    assert prof["bounds"] == [{"env_id": "CartPole-v0", "low": 2.0, "high": 200.0, "runs": 8}]
    assert prof["taus"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    normalised = {
        0: [(v - 2) / 198 for v in best_finals],
        1: [(v - 2) / 198 for v in other_finals],
    }
    for curve_out in prof["profiles"]:
        (index,) = curve_out["cells"]
        expected = [np.mean([v > tau for v in normalised[index]]) for tau in prof["taus"]]
        assert curve_out["fractions"] == pytest.approx(expected)
        bands = zip(curve_out["lower"], curve_out["fractions"], curve_out["upper"], strict=True)
        assert all(lo <= f <= hi for lo, f, hi in bands)
        assert curve_out["runs"] == 4 and curve_out["partial"] == (index == 1)
    one = client.get(f"/api/studies/{study['id']}/profile", params={"cells": "1", "metric": "mmer"}).json()
    assert [p["cells"] for p in one["profiles"]] == [[1]] and one["metric"] == "mmer"
    bad = client.get(f"/api/studies/{study['id']}/profile", params={"cells": "0,5"})
    assert bad.status_code == 422 and "no cell 5" in bad.json()["message"]


def test_profiles_pool_cells_across_envs_by_config(api: Api) -> None:
    client = api.user()
    axes = {"env_id": ["CartPole-v0", "CartPole-v1"], "model": ["mlp", "gru"]}
    study = post_study(client, axes=axes, seeds=[0, 1])
    finals = {  # (env, model) -> the two seeds' final returns
        ("CartPole-v0", "mlp"): [10.0, 20.0],
        ("CartPole-v0", "gru"): [30.0, 110.0],
        ("CartPole-v1", "mlp"): [100.0, 100.0],
        ("CartPole-v1", "gru"): [300.0, 500.0],
    }
    for cell in study["cells"]:
        key = (cell["values"]["env_id"], cell["values"]["model"])
        for run, final in zip(cell["runs"], finals[key], strict=True):
            finish_job(api.settings, run["job_id"], curve([final] * 10, [10.0] * 10))
    got = client.get(f"/api/studies/{study['id']}").json()
    assert {(b["env_id"], b["label"]) for b in got["best"]} == {
        ("CartPole-v0", "env_id=CartPole-v0, model=gru"),
        ("CartPole-v1", "env_id=CartPole-v1, model=gru"),
    }
    prof = client.get(f"/api/studies/{study['id']}/profile", params={"by": "config", "points": 3}).json()
    assert [b["low"] for b in prof["bounds"]] == [10.0, 100.0] and [b["high"] for b in prof["bounds"]] == [
        110.0,
        500.0,
    ]
    curves = {p["label"]: p for p in prof["profiles"]}
    assert set(curves) == {"model=mlp", "model=gru"}
    gru = curves["model=gru"]
    assert gru["envs"] == ["CartPole-v0", "CartPole-v1"] and gru["runs"] == 4 and len(gru["cells"]) == 2
    # gru normalised: v0 (0.2, 1.0), v1 (0.5, 1.0); per env fraction above tau, averaged over envs.
    assert gru["fractions"] == pytest.approx([1.0, 0.5, 0.0])
    assert curves["model=mlp"]["fractions"] == pytest.approx([0.5 / 2, 0.0, 0.0])


def streamed_jobs(stack: Stack, study_id: str, wanted: set[str], timeout: float = 60) -> set[str]:
    """The jobs `GET /api/events?study=` sends `job` events for, until it has sent every one of `wanted`."""
    seen: set[str] = set()
    headers = {"Authorization": f"Bearer {stack.token}"}
    url = f"{stack.url}/api/events"
    deadline = time.monotonic() + timeout
    with httpx.stream("GET", url, params={"study": study_id}, headers=headers, timeout=20) as response:
        assert response.status_code == 200, response.read()
        for event in sse_events(response):
            if event["event"] == "job":
                seen.add(event["data"]["id"])
            if wanted <= seen or time.monotonic() > deadline:
                break
    assert wanted <= seen, seen
    return seen


def test_real_jobs_store_their_scores_and_groups_report_them(stack: Stack) -> None:
    client = stack.client()
    spec = {**TINY_SPEC, "total_steps": 1200}
    # The group first: its jobs run first, so the study's are still queued when the stream opens.
    group = client.post("/api/groups", json={"spec": spec, "seeds": [0, 1]})
    assert group.status_code == 201, group.text
    response = client.post(
        "/api/studies", json={"spec": spec, "axes": {"model": ["mlp", "gru"]}, "seeds": [0]}
    )
    assert response.status_code == 201, response.text
    study = response.json()
    ids = [r["job_id"] for c in study["cells"] for r in c["runs"]]
    group_ids = [j["id"] for j in group.json()["jobs"]]
    assert streamed_jobs(stack, study["id"], set(ids)) <= set(ids)  # the group's jobs are not streamed
    for job_id in ids + group_ids:
        assert stack.wait_finished(job_id, timeout=120)["status"] == "succeeded"
    view = client.get(f"/api/studies/{study['id']}").json()
    assert view["status"] == "finished" and view["progress"]["percent"] == 100.0
    for job_id in ids:
        job = client.get(f"/api/jobs/{job_id}").json()
        series = stack.metric_series(job_id)
        steps, returns = series["charts/episodic_return"]["steps"], series["charts/episodic_return"]["values"]
        episodes = series["charts/episodes"]["values"]
        assert series["charts/episodes"]["steps"] == steps
        final = stats.final_score(steps, returns, episodes, total_steps=1200)
        best = stats.mmer(steps, returns, episodes, min_episodes=10)
        assert final is not None and job["final_score"] == pytest.approx(final)
        assert job["mmer"] == pytest.approx(best) and not job["scores_partial"]
        run = next(r for c in view["cells"] for r in c["runs"] if r["job_id"] == job_id)
        assert (run["final_score"], run["mmer"], run["partial"]) == (job["final_score"], job["mmer"], False)
    assert all(c["scores"]["final"]["n"] == 1 for c in view["cells"])
    shown = client.get(f"/api/groups/{group.json()['id']}").json()
    (model,) = shown["scores"]
    finals = [client.get(f"/api/jobs/{j}").json()["final_score"] for j in group_ids]
    assert model["model"] == "mlp" and model["jobs"] == 2 and not model["partial"]
    assert model["scores"]["final"]["n"] == 2
    assert model["scores"]["final"]["mean"]["point"] == pytest.approx(np.mean(finals))
    assert [j["final_score"] for j in shown["jobs"]] == finals


# -- the command line ---------------------------------------------------------------------------


def rlserve(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "from app.cli import main; main()", *args]
    return subprocess.run(
        command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def test_rlserve_study_submits_shows_and_explains_bad_files(stack: Stack, tmp_path: Path) -> None:
    env = {**os.environ, "RLSERVE_URL": stack.url, "RLSERVE_TOKEN": stack.token}
    good = tmp_path / "study.yaml"
    body = {
        "name": "cli",
        "spec": {**TINY_SPEC, "total_steps": 400},
        "axes": {"model": ["mlp", "gru"]},
        "seeds": [0],
    }
    good.write_text(yaml.safe_dump(body))
    result = rlserve(["study", str(good)], env)
    assert result.returncode == 0, result.stdout + result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("study ") and "2 cells x 1 seeds = 2 jobs queued" in first
    sid = first.split()[1].rstrip(":")
    assert f"{stack.url}/#/studies/{sid}" in result.stdout and "cell 1: model=gru" in result.stdout
    for run in stack.client().get(f"/api/studies/{sid}").json()["cells"]:
        stack.wait_finished(run["runs"][0]["job_id"], timeout=120)
    shown = rlserve(["study", "status", sid], env)
    followed = rlserve(["study", str(good), "--wait"], env)
    assert followed.returncode == 0, followed.stdout + followed.stderr
    assert "2/2 jobs done" in followed.stdout and "finished: 100%" in followed.stdout
    assert shown.returncode == 0, shown.stderr
    assert "CELL" in shown.stdout and "model=gru" in shown.stdout and "finished: 100%" in shown.stdout
    assert "best on CartPole-v0 (final): cell" in shown.stdout

    cases = {
        "broken.yaml": ("spec: [unclosed", "is not valid YAML (line"),
        "list.yaml": ("- 1\n- 2\n", "expected a mapping"),
        "bad-cell.yaml": (
            yaml.safe_dump({**body, "axes": {"model": ["mlp", "transformer"]}}),
            "error 422: axes.model: in cell 1 (model=transformer)",
        ),
        "bad.json": ("{not json", "is not valid JSON"),
    }
    for name, (text, words) in cases.items():
        (tmp_path / name).write_text(text)
        result = rlserve(["study", str(tmp_path / name)], env)
        assert result.returncode == 1 and words in result.stderr, (name, result.stderr)
        assert "Traceback" not in result.stderr
    result = rlserve(["study", str(tmp_path / "missing.yaml")], env)
    assert result.returncode == 1 and "cannot read" in result.stderr and "Traceback" not in result.stderr
    result = rlserve(["study", "status", "0" * 32], env)
    assert result.returncode == 1 and "error 404" in result.stderr
    result = rlserve(["study", str(good)], {**env, "RLSERVE_URL": "http://127.0.0.1:9"})
    assert (
        result.returncode == 1
        and "cannot reach rlserve" in result.stderr
        and "Traceback" not in result.stderr
    )
