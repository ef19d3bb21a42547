"""Fair use of the shared service: quotas, priority within a user's own jobs, retry, stream cap."""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import Any

import httpx

from app.db import session_scope
from app.tokens import create_token
from tests.conftest import TINY_SPEC, Stack

# Long enough never to finish during a test; every test cancels its jobs.
LONG_SPEC = {**TINY_SPEC, "total_steps": 1_000_000, "checkpoint_interval": 0}


def new_user(stack: Stack) -> httpx.Client:
    """A client for a user of this test's own, so quotas start from zero."""
    with session_scope(stack.settings.database_url) as session:
        token = create_token(session, f"user-{uuid.uuid4().hex[:8]}", "tests")
    return stack.client(token)


def active_jobs(client: httpx.Client) -> list[dict[str, Any]]:
    return client.get("/api/jobs", params={"status": "queued,running", "limit": 500}).json()["items"]


def cancel_all(client: httpx.Client) -> None:
    for job in active_jobs(client):
        client.post(f"/api/jobs/{job['id']}/cancel")


def test_too_many_steps_or_checkpoints_is_422_naming_the_field(stack: Stack) -> None:
    client = new_user(stack)
    limit = stack.settings.max_total_steps
    response = client.post("/api/jobs", json={"spec": {**TINY_SPEC, "total_steps": limit + 1}})
    assert response.status_code == 422, response.text
    assert "spec.total_steps" in response.json()["message"]
    assert str(limit) in response.json()["message"]

    # One checkpoint every update of a 20M-step job would store a point per checkpoint.
    spec = {**TINY_SPEC, "total_steps": limit, "checkpoint_interval": 200}
    response = client.post("/api/jobs", json={"spec": spec})
    assert response.status_code == 422, response.text
    assert "spec.checkpoint_interval" in response.json()["message"]
    assert active_jobs(client) == []


def test_group_larger_than_the_limit_is_422_and_queues_nothing(stack: Stack) -> None:
    client = new_user(stack)
    body = {"spec": TINY_SPEC, "seeds": list(range(10)), "models": ["mlp", "gru", "lstm"]}
    response = client.post("/api/groups", json=body)
    assert response.status_code == 422, response.text
    assert "seeds" in response.json()["message"] and "30 jobs" in response.json()["message"]
    assert client.get("/api/groups").json()["total"] == 0
    assert active_jobs(client) == []


def test_active_jobs_quota_is_429_and_a_group_over_it_queues_nothing(stack: Stack) -> None:
    client = new_user(stack)
    limit = stack.settings.max_active_jobs
    try:
        group = client.post("/api/groups", json={"spec": LONG_SPEC, "seeds": list(range(limit - 1))})
        assert group.status_code == 201, group.text
        assert client.post("/api/jobs", json={"spec": LONG_SPEC}).status_code == 201  # the last one

        response = client.post("/api/jobs", json={"spec": LONG_SPEC})
        assert response.status_code == 429, response.text
        assert f"the limit is {limit}" in response.json()["detail"]
        response = client.post("/api/groups", json={"spec": LONG_SPEC, "seeds": [100, 101]})
        assert response.status_code == 429, response.text
        assert len(active_jobs(client)) == limit
        assert client.get("/api/groups").json()["total"] == 1  # the refused group was not stored

        # Another user is not held back by this one's jobs.
        other = new_user(stack)
        assert other.post("/api/jobs", json={"spec": LONG_SPEC}).status_code == 201
        cancel_all(other)

        # A finished (here: cancelled) job frees its place.
        queued = [j for j in active_jobs(client) if j["status"] == "queued"]
        assert client.post(f"/api/jobs/{queued[0]['id']}/cancel").status_code == 200
        assert client.post("/api/jobs", json={"spec": LONG_SPEC}).status_code == 201
    finally:
        cancel_all(client)


def test_retry_only_of_a_finished_job(stack: Stack) -> None:
    client = new_user(stack)
    try:
        running = client.post("/api/jobs", json={"spec": LONG_SPEC}).json()
        is_running = lambda j: j["status"] == "running"  # noqa: E731
        stack.wait_for(running["id"], is_running, what="running", token=_token(client))
        response = client.post(f"/api/jobs/{running['id']}/retry")
        assert response.status_code == 409, response.text
        assert "only a finished job" in response.json()["detail"]
        assert len(active_jobs(client)) == 1  # no duplicate was queued

        assert client.post(f"/api/jobs/{running['id']}/cancel").status_code == 200
        done = stack.wait_finished(running["id"], token=_token(client))
        assert done["status"] == "cancelled"
        again = client.post(f"/api/jobs/{running['id']}/retry")
        assert again.status_code == 201, again.text
    finally:
        cancel_all(client)


def _token(client: httpx.Client) -> str:
    return client.headers["Authorization"].removeprefix("Bearer ")


def test_priority_orders_only_the_users_own_jobs(stack: Stack) -> None:
    alice, bob = new_user(stack), new_user(stack)
    try:
        # A job that holds the one worker while the others queue behind it.
        blocker = alice.post("/api/jobs", json={"spec": LONG_SPEC}).json()
        stack.wait_for(blocker["id"], lambda j: j["status"] == "running", what="running", token=_token(alice))
        small = {**TINY_SPEC, "total_steps": 400}
        b0 = bob.post("/api/jobs", json={"spec": small}).json()
        a_low = alice.post("/api/jobs", json={"spec": small, "priority": 0}).json()
        a_high = alice.post("/api/jobs", json={"spec": small, "priority": 9}).json()
        assert alice.post(f"/api/jobs/{blocker['id']}/cancel").status_code == 200

        started = {}
        for client, job in ((bob, b0), (alice, a_low), (alice, a_high)):
            done = stack.wait_finished(job["id"], timeout=120, token=_token(client))
            assert done["status"] == "succeeded", done
            started[job["id"]] = done["started_at"]
        # Bob's job came first and stays first: Alice's priority 9 does not jump it...
        assert started[b0["id"]] < started[a_high["id"]]
        # ...but it does put her priority-9 job before her earlier priority-0 one.
        assert started[a_high["id"]] < started[a_low["id"]]
    finally:
        cancel_all(alice)
        cancel_all(bob)


def test_event_streams_are_capped_per_user(stack: Stack) -> None:
    client = new_user(stack)
    limit = stack.settings.max_streams_per_user
    job = client.post("/api/jobs", json={"spec": LONG_SPEC}).json()
    client.post(f"/api/jobs/{job['id']}/cancel")
    with contextlib.ExitStack() as streams:
        for _ in range(limit):
            response = streams.enter_context(client.stream("GET", "/api/events"))
            assert response.status_code == 200
        for path in ("/api/events", f"/api/jobs/{job['id']}/events"):
            refused = client.get(path)
            assert refused.status_code == 429, refused.text
            assert f"at most {limit} per user" in refused.json()["detail"]
        # Another user is not affected.
        with new_user(stack).stream("GET", "/api/events") as response:
            assert response.status_code == 200
    # Closed streams free their places (the server sees the disconnects shortly).
    deadline = time.monotonic() + 30
    while True:
        with client.stream("GET", "/api/events") as response:
            if response.status_code == 200:
                break
        assert time.monotonic() < deadline, "closed streams were never released"
        time.sleep(0.2)
