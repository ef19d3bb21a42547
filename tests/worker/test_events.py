"""Server-Sent Events: live points while the job runs; Last-Event-ID resumes exactly."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Stack, sse_events


def read_events(
    stack: Stack, job_id: str, last_event_id: str | None = None, stop_after_points: int | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """Read the stream until `end` (or until `stop_after_points` points); returns events and the last id."""
    headers = {"Authorization": f"Bearer {stack.token}"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    events: list[dict[str, Any]] = []
    last_id = last_event_id
    points = 0
    with httpx.stream(
        "GET", f"{stack.url}/api/jobs/{job_id}/events", headers=headers, timeout=60
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for event in sse_events(response):
            events.append(event)
            last_id = event["id"]
            if event["event"] == "metrics":
                points += len(event["data"]["points"])
            if event["event"] == "end":
                break
            if stop_after_points is not None and points >= stop_after_points:
                break
    return events, last_id


def _steps(events: list[dict[str, Any]]) -> list[int]:
    return [p["step"] for e in events if e["event"] == "metrics" for p in e["data"]["points"]]


def test_stream_then_reconnect_with_last_event_id(stack: Stack) -> None:
    job = stack.submit(total_steps=40_000, num_envs=2, rollout_length=25, checkpoint_interval=0)
    first, last_id = read_events(stack, job["id"], stop_after_points=5)
    assert first[0]["event"] == "status" and first[0]["data"]["status"] == "queued"
    assert any(e["event"] == "status" and e["data"]["status"] == "running" for e in first)
    assert first[0]["data"]["job"]["id"] == job["id"]
    seen = _steps(first)
    assert len(seen) >= 5
    running = stack.client().get(f"/api/jobs/{job['id']}").json()
    assert running["status"] == "running", "the first points must arrive while the job runs"

    rest, _ = read_events(stack, job["id"], last_event_id=last_id)
    missed = _steps(rest)
    assert rest[-1]["event"] == "end" and rest[-1]["data"]["status"] == "succeeded"
    statuses = [e["data"]["status"] for e in rest if e["event"] == "status"]
    assert statuses == ["succeeded"]  # queued and running were already received

    stored = stack.client().get(f"/api/jobs/{job['id']}/metrics", params={"max_points": 0}).json()
    all_steps = stored["series"]["perf/sps"]["steps"]
    assert seen + missed == all_steps  # exactly what was missed: no gap, no duplicate

    # A reconnect after the end gets nothing new, just `end` again.
    again, _ = read_events(stack, job["id"], last_event_id=rest[-1]["id"])
    assert [e["event"] for e in again] == ["end"]
