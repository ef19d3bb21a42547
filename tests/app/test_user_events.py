"""`GET /api/events`: the user's stream of job changes (status, progress, new points)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.conftest import Stack, sse_events

Event = dict[str, Any]


def read_until(
    stack: Stack,
    done: Callable[[list[Event]], bool],
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60,
    on_open: Callable[[], None] | None = None,
) -> list[Event]:
    """Events of /api/events until `done(events)` is true (or fail after `timeout` s)."""
    events: list[Event] = []
    deadline = time.monotonic() + timeout
    with httpx.stream(
        "GET",
        f"{stack.url}/api/events",
        params=params,
        headers={"Authorization": f"Bearer {stack.token}", **(headers or {})},
        timeout=20,
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        if on_open is not None:
            on_open()
        for event in sse_events(response):
            events.append(event)
            if done(events):
                return events
            got = [(e["event"], e["data"].get("status")) for e in events]
            assert time.monotonic() < deadline, f"timed out; got {got}"
    raise AssertionError("the stream ended")


def statuses(events: list[Event], job_id: str) -> list[str]:
    return [e["data"]["status"] for e in events if e["event"] == "job" and e["data"]["id"] == job_id]


STEPS = 40_000


def finished(job_id: str) -> Callable[[list[Event]], bool]:
    return lambda events: "succeeded" in statuses(events, job_id)


def test_stream_pushes_status_progress_and_points_of_my_jobs_only(stack: Stack) -> None:
    submitted: dict[str, Any] = {}

    def submit() -> None:
        # Long enough (about a second) for the stream's 0.1 s polls to see it run.
        submitted.update(stack.submit(total_steps=STEPS, num_envs=2))
        # Another user's job never shows up in this user's stream.
        other = stack.submit(client=stack.client(token=stack.other_token), total_steps=200)
        submitted["other"] = other["id"]

    events = read_until(stack, lambda ev: bool(submitted) and finished(submitted["id"])(ev), on_open=submit)
    job_id = submitted["id"]
    seen = statuses(events, job_id)
    # Each event is the job as it is when sent (a worker may claim it before the first one).
    assert seen[0] in ("queued", "running") and "running" in seen and seen[-1] == "succeeded", seen
    assert submitted["other"] not in {e["data"].get("id", e["data"].get("job_id")) for e in events}
    # Progress arrives while it runs, not only at the end.
    steps = [e["data"]["step"] for e in events if e["event"] == "job" and e["data"]["status"] == "running"]
    assert any(0 < s < STEPS for s in steps), steps
    points = [e["data"]["last_step"] for e in events if e["event"] == "points"]
    assert len(points) >= 2 and points == sorted(points) and 0 < points[0] < STEPS, points
    final = [e for e in events if e["event"] == "job"][-1]["data"]
    assert final["step"] >= STEPS and final["has_policy"]  # REINFORCE ends with whole episodes
    assert all(e["id"].isdigit() for e in events)


def test_reconnect_with_last_event_id_gets_what_changed(stack: Stack) -> None:
    job = stack.submit(total_steps=8000)
    first = read_until(stack, lambda ev: "running" in statuses(ev, job["id"]))
    last_id = first[-1]["id"]
    stack.wait_finished(job["id"])
    # Reconnecting: the change missed meanwhile (succeeded) comes first, before anything else happens.
    again = read_until(stack, lambda ev: bool(statuses(ev, job["id"])), headers={"Last-Event-ID": last_id})
    assert statuses(again, job["id"])[-1] == "succeeded"
    assert int(again[-1]["id"]) > int(last_id)


def test_group_filter_auth_and_token_query(stack: Stack) -> None:
    client = stack.client()
    response = client.post(
        "/api/groups",
        json={"spec": {"algo": "reinforce", "env_id": "CartPole-v0", "total_steps": 400}, "seeds": [0, 1]},
    )
    assert response.status_code == 201, response.text
    group = response.json()
    ids = {j["id"] for j in group["jobs"]}
    outsider = stack.submit(total_steps=400)
    # A token in the query is refused (it would end up in logs): the dashboard sends the header.
    with httpx.stream(
        "GET", f"{stack.url}/api/events", params={"group": group["id"], "token": stack.token}, timeout=20
    ) as response:
        assert response.status_code == 401
    events = read_until(
        stack,
        lambda ev: all("succeeded" in statuses(ev, i) for i in ids),
        params={"group": group["id"]},
        headers={"Last-Event-ID": "0"},  # everything since the start: the jobs' whole history
    )
    assert {e["data"].get("id", e["data"].get("job_id")) for e in events} == ids
    assert outsider["id"] not in {e["data"].get("id") for e in events}

    assert httpx.get(f"{stack.url}/api/events", timeout=10).status_code == 401
    bad = httpx.get(f"{stack.url}/api/events", params={"token": "rls_nope"}, timeout=10)
    assert bad.status_code == 401
    other = stack.client(token=stack.other_token)
    assert other.get("/api/events", params={"group": group["id"]}).status_code == 404
    assert client.get("/api/events", params={"group": "../etc"}).status_code == 404
