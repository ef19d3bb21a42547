"""Replay API contract: validation, ownership, no policy yet, the per-user limit."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Stack


@pytest.fixture(scope="module")
def finished(stack: Stack) -> dict[str, Any]:
    """A tiny CartPole job that succeeded: it has a final policy."""
    job = stack.wait_finished(stack.submit()["id"])
    assert job["status"] == "succeeded", job
    return job


@pytest.fixture
def limit_of(stack: Stack) -> Iterator[Any]:
    """Set the API's `max_queued_replays` for one test (the API runs in this process)."""
    original = stack.app.state.settings

    def set_limit(limit: int) -> None:
        stack.app.state.settings = dataclasses.replace(original, max_queued_replays=limit)

    yield set_limit
    stack.app.state.settings = original


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "movie"}, "kind"),
        ({"policy": "latest"}, "policy"),
        ({"max_steps": 0}, "max_steps"),
        ({"max_steps": 5001}, "max_steps"),
        ({"seed": -1}, "seed"),
        ({"episodes": 2, "kind": "probe"}, "episodes"),
        ({"episodes": 8}, "episodes"),  # a replay plays one episode
        ({"kind": "probe", "max_steps": 2000}, "max_steps"),
        ({"frames": 10}, "frames"),
    ],
)
def test_bad_requests_are_422_naming_the_field(stack: Stack, body: dict[str, Any], field: str) -> None:
    job = stack.submit(total_steps=200)
    response = stack.client().post(f"/api/jobs/{job['id']}/replays", json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["message"]


def test_probe_of_an_env_that_hides_nothing_is_422(stack: Stack, finished: dict[str, Any]) -> None:
    response = stack.client().post(f"/api/jobs/{finished['id']}/replays", json={"kind": "probe"})
    assert response.status_code == 422, response.text
    assert "kind" in response.json()["message"] and "hides nothing" in response.text


def test_no_policy_yet_is_409(stack: Stack, finished: dict[str, Any]) -> None:
    client = stack.client()
    queued = stack.submit(total_steps=200_000)
    try:
        for policy in ("final", "best"):
            response = client.post(f"/api/jobs/{queued['id']}/replays", json={"policy": policy})
            assert response.status_code == 409, response.text
            assert f"no {policy} policy" in response.json()["detail"]
    finally:
        client.post(f"/api/jobs/{queued['id']}/cancel")
    stack.wait_finished(queued["id"])


def test_another_users_replays_are_404(stack: Stack, finished: dict[str, Any]) -> None:
    alice, bob = stack.client(), stack.client(token=stack.other_token)
    created = alice.post(f"/api/jobs/{finished['id']}/replays", json={"seed": 1, "max_steps": 20})
    assert created.status_code == 202, created.text
    replay = created.json()
    assert replay["status"] == "queued" and replay["kind"] == "replay" and replay["data"] is None
    assert replay["params"] == {"policy": "final", "seed": 1, "deterministic": False, "max_steps": 20}
    for method, path in [
        ("POST", f"/api/jobs/{finished['id']}/replays"),
        ("GET", f"/api/jobs/{finished['id']}/replays"),
        ("GET", f"/api/replays/{replay['id']}"),
        ("GET", f"/api/replays/{replay['id']}/video"),
    ]:
        response = bob.request(method, path, json={} if method == "POST" else None)
        assert response.status_code == 404, (method, path, response.text)
    listed = alice.get(f"/api/jobs/{finished['id']}/replays").json()["items"]
    assert replay["id"] in [r["id"] for r in listed]
    assert stack.wait_replay(replay["id"])["status"] == "ready"
    assert alice.get("/api/replays/not-an-id!").status_code in (404, 422)


def test_queued_replays_over_the_limit_are_429(stack: Stack, finished: dict[str, Any], limit_of: Any) -> None:
    client = stack.client()
    # A long job keeps the one worker busy, so the replays stay queued behind it.
    blocker = stack.submit(total_steps=2_000_000)
    stack.wait_for(blocker["id"], lambda j: j["status"] == "running", what="the blocker to run")
    try:
        limit_of(1)
        first = client.post(f"/api/jobs/{finished['id']}/replays", json={"max_steps": 10})
        assert first.status_code == 202, first.text
        second = client.post(f"/api/jobs/{finished['id']}/replays", json={"max_steps": 10})
        assert second.status_code == 429, second.text
        assert "1" in second.json()["detail"]
        # Another user's limit is their own.
        other_job = stack.submit(client=stack.client(token=stack.other_token), total_steps=200)
        response = stack.client(token=stack.other_token).post(f"/api/jobs/{other_job['id']}/replays", json={})
        assert response.status_code == 409  # bob's job has no policy yet; not 429
    finally:
        client.post(f"/api/jobs/{blocker['id']}/cancel")
    stack.wait_finished(blocker["id"])
    assert stack.wait_replay(first.json()["id"])["status"] == "ready"
