"""Extend a finished job (the same job; its curve goes on from its checkpoint) and fork one (a
new job from the parent's checkpoint with a changed spec), through the API and a real worker."""

from __future__ import annotations

import shutil
from typing import Any

import httpx
import pytest

from tests.conftest import Stack

# a2c keeps its learning rate constant, so a job extended (or forked) from 1000 to 2000
# steps must train exactly as a job asked for 2000 steps from the start.
SPEC: dict[str, Any] = {
    "algo": "a2c",
    "model": "gru",
    "env_id": "CartPole-v1",
    "num_envs": 2,
    "rollout_length": 50,
    "total_steps": 1000,
    "checkpoint_interval": 0,
}
BATCH = 100  # env steps per update: one metric point each
TRAINING = ("charts/episodic_return", "charts/episodic_length", "losses/policy_loss", "losses/entropy")


def points(stack: Stack, job_id: str, key: str, after: int = 0) -> dict[int, float]:
    series = stack.metric_series(job_id).get(key, {"steps": [], "values": []})
    return {s: v for s, v in zip(series["steps"], series["values"], strict=True) if s > after}


def assert_trains_like(stack: Stack, job_id: str, reference_id: str, after: int) -> None:
    """The job's training metrics after `after` are the reference job's, step for step."""
    for key in TRAINING:
        got, expected = points(stack, job_id, key, after), points(stack, reference_id, key, after)
        assert got.keys() == expected.keys(), key
        assert got == pytest.approx(expected, abs=1e-6), key


def field_errors(response: httpx.Response) -> list[list[str | int]]:
    assert response.status_code == 422, response.text
    return [error["loc"] for error in response.json()["detail"]]


def test_extend_continues_the_curve_from_the_checkpoint(stack: Stack) -> None:
    client = stack.client()
    job = stack.submit(**SPEC)
    assert stack.wait_finished(job["id"])["status"] == "succeeded"
    straight = stack.submit(**{**SPEC, "total_steps": 2000})

    response = client.post(f"/api/jobs/{job['id']}/extend", json={"total_steps": 2000})
    assert response.status_code == 200, response.text
    queued = response.json()
    assert queued["id"] == job["id"] and queued["status"] == "queued"
    assert queued["spec"] == {**job["spec"], "total_steps": 2000}
    assert queued["history"][-1]["message"] == "extended from 1000 to 2000 steps"

    done = stack.wait_finished(job["id"], timeout=120)
    assert done["status"] == "succeeded", done
    assert done["step"] == done["total_steps"] == 2000 and done["progress"] == 100.0
    assert done["resumed_from_step"] == 1000 and done["attempts"] == 1
    steps = stack.metric_series(job["id"])["perf/sps"]["steps"]
    assert steps == list(range(BATCH, 2001, BATCH))  # every step once, the last the new total
    assert done["points_written"] == len(steps)
    # The default spec evaluates at the end: at each end the job had.
    evaluations = points(stack, job["id"], "eval/episodic_return")
    assert sorted(evaluations) == [1000, 2000]

    # Weights, optimizer, envs and random streams came from the checkpoint: the extended
    # job trains (and at its end evaluates) exactly as the one asked for 2000 steps.
    assert stack.wait_finished(straight["id"], timeout=120)["status"] == "succeeded"
    assert_trains_like(stack, job["id"], straight["id"], after=0)
    assert evaluations[2000] == pytest.approx(points(stack, straight["id"], "eval/episodic_return")[2000])


def test_extend_only_a_finished_job_with_a_checkpoint_to_more_steps(stack: Stack) -> None:
    client = stack.client()
    long = stack.submit(total_steps=2_000_000)
    extend = f"/api/jobs/{long['id']}/extend"
    stack.wait_for(long["id"], lambda j: j["status"] == "running" and j["step"] > 0, what="progress")
    response = client.post(extend, json={"total_steps": 3_000_000})
    assert response.status_code == 409 and "running" in response.json()["detail"]

    client.post(f"/api/jobs/{long['id']}/cancel")
    cancelled = stack.wait_finished(long["id"], timeout=20)
    assert cancelled["status"] == "cancelled"
    for total in (2_000_000, 1000):
        assert field_errors(client.post(extend, json={"total_steps": total})) == [["body", "total_steps"]]
    too_many = client.post(extend, json={"total_steps": 10**9})
    assert field_errors(too_many) == [["body", "total_steps"]]
    assert "total_steps" in too_many.json()["message"]
    assert field_errors(client.post(extend, json={})) == [["body", "total_steps"]]
    other = stack.client(stack.other_token)
    assert other.post(extend, json={"total_steps": 3_000_000}).status_code == 404

    # A cancelled job goes on from where it stopped.
    response = client.post(extend, json={"total_steps": 2_000_001})
    assert response.status_code == 200, response.text
    resumed = stack.wait_for(
        long["id"], lambda j: j["status"] == "running" and j["resumed_from_step"] is not None, what="resume"
    )
    assert resumed["resumed_from_step"] == cancelled["step"]  # a cancel checkpoints where it stops
    client.post(f"/api/jobs/{long['id']}/cancel")
    assert stack.wait_finished(long["id"], timeout=20)["status"] == "cancelled"

    shutil.rmtree(stack.settings.job_dir(long["id"]) / "checkpoints")
    response = client.post(extend, json={"total_steps": 3_000_000})
    assert response.status_code == 409 and "no checkpoint" in response.json()["detail"]
    assert client.delete(f"/api/jobs/{long['id']}").status_code == 204


def test_fork_starts_a_linked_job_from_the_parents_checkpoint(stack: Stack) -> None:
    client = stack.client()
    parent = stack.submit(**SPEC)
    assert stack.wait_finished(parent["id"])["status"] == "succeeded"
    fork = f"/api/jobs/{parent['id']}/fork"
    straight = stack.submit(**{**SPEC, "total_steps": 2000})

    response = client.post(fork, json={"spec": {"total_steps": 2000}})
    assert response.status_code == 201, response.text
    plain = response.json()
    assert plain["id"] != parent["id"] and plain["status"] == "queued"
    assert (plain["parent_id"], plain["forked_at_step"], plain["step"]) == (parent["id"], 1000, 1000)
    assert plain["spec"] == {**parent["spec"], "total_steps": 2000}
    changes = {"learning_rate": 0.0005, "ent_coef": 0.05, "total_steps": 1500}
    response = client.post(fork, json={"spec": changes, "name": "lower lr", "tags": ["fork"]})
    assert response.status_code == 201, response.text
    changed = response.json()
    assert changed["spec"] == {**parent["spec"], **changes}
    assert (changed["name"], changed["tags"], changed["parent_id"]) == ("lower lr", ["fork"], parent["id"])

    # Same weights, optimizer, envs mid-episode and random streams as the parent's end: a
    # fork that changes only total_steps trains exactly as the job asked for 2000 steps.
    done = stack.wait_finished(plain["id"], timeout=120)
    assert done["status"] == "succeeded" and done["step"] == 2000, done
    assert "(a fork)" in done["history"][-2]["message"]
    assert stack.metric_series(plain["id"])["perf/sps"]["steps"] == list(range(1100, 2001, BATCH))
    assert stack.wait_finished(straight["id"], timeout=120)["status"] == "succeeded"
    assert_trains_like(stack, plain["id"], straight["id"], after=1000)

    done = stack.wait_finished(changed["id"], timeout=120)
    assert done["status"] == "succeeded" and done["step"] == 1500, done
    rates = points(stack, changed["id"], "charts/learning_rate")
    assert sorted(rates) == list(range(1100, 1501, BATCH))  # its curve starts at the parent's step
    assert set(rates.values()) == {0.0005}
    parent_steps = stack.metric_series(parent["id"])["perf/sps"]["steps"]
    assert parent_steps == list(range(BATCH, 1001, BATCH))  # the parent is left as it was

    # What a fork cannot change is refused, naming the field; nothing is stored.
    jobs_before = client.get("/api/jobs").json()["total"]
    for spec, field in [
        ({"hidden_size": 128}, "hidden_size"),
        ({"model": "lstm"}, "model"),
        ({"env_id": "CartPole-v0"}, "env_id"),
        ({"num_envs": 4}, "num_envs"),
        ({"total_steps": 1000}, "total_steps"),  # not past the checkpoint
        ({"learning_rate": -1}, "learning_rate"),
        ({"no_such_field": 1}, "no_such_field"),
    ]:
        response = client.post(fork, json={"spec": spec})
        assert field_errors(response) == [["body", "spec", field]], spec
        assert f"spec.{field}" in response.json()["message"]
    assert client.get("/api/jobs").json()["total"] == jobs_before
    assert stack.client(stack.other_token).post(fork, json={"spec": {}}).status_code == 404

    shutil.rmtree(stack.settings.job_dir(parent["id"]) / "checkpoints")
    response = client.post(fork, json={"spec": {"total_steps": 3000}})
    assert response.status_code == 409 and "no checkpoint" in response.json()["detail"]

    # The forks outlive their parent, keeping the step they started from.
    assert client.delete(f"/api/jobs/{parent['id']}").status_code == 204
    orphan = client.get(f"/api/jobs/{changed['id']}").json()
    assert (orphan["parent_id"], orphan["forked_at_step"]) == (None, 1000)
