"""Hostile inputs get a 4xx, never a 500: huge integers, non-finite numbers, huge bodies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.settings import Settings
from tests.conftest import TINY_SPEC, Stack

HUGE = [2**63, 2**64, 10**30]


@pytest.fixture(scope="module")
def queued_job(stack: Stack) -> Iterator[dict[str, Any]]:
    """A job that stays queued or running while the module runs (its metrics come from SQL)."""
    job = stack.submit(total_steps=10_000_000)
    yield job
    stack.client().post(f"/api/jobs/{job['id']}/cancel")
    stack.wait_finished(job["id"])


def _status_of_stream(stack: Stack, path: str, headers: dict[str, str]) -> tuple[int, Any]:
    """The status (and JSON error, if any) of an event stream request; the stream is closed at once."""
    with httpx.stream(
        "GET", f"{stack.url}{path}", headers={"Authorization": f"Bearer {stack.token}", **headers}, timeout=20
    ) as response:
        body = json.loads(response.read()) if response.status_code != 200 else None
        return response.status_code, body


@pytest.mark.parametrize("value", HUGE)
def test_huge_offsets_and_steps_are_422(stack: Stack, queued_job: dict[str, Any], value: int) -> None:
    client = stack.client()
    for path, params in [
        ("/api/jobs", {"offset": value}),
        ("/api/groups", {"offset": value}),
        (f"/api/jobs/{queued_job['id']}/metrics", {"since_step": value}),
        (f"/api/jobs/{queued_job['id']}/metrics", {"since_step": value, "format": "csv"}),
        (f"/api/jobs/{queued_job['id']}/metrics", {"max_points": value}),
        ("/api/jobs", {"limit": value}),
    ]:
        response = client.get(path, params=params)
        assert response.status_code == 422, (path, params, response.text)
        name = next(iter(params))
        assert name in response.json()["message"]


def test_largest_allowed_offset_answers_an_empty_page(stack: Stack) -> None:
    from app.schemas import DB_INT_MAX

    page = stack.client().get("/api/jobs", params={"offset": DB_INT_MAX})
    assert page.status_code == 200, page.text
    assert page.json()["items"] == []


@pytest.mark.parametrize(
    "last_event_id", [f"{2**63}-0", f"0-{2**64}", f"{10**30}-{10**30}", "not-a-cursor", "1-2-3", "--1"]
)
def test_bad_last_event_id_on_the_job_stream_is_422(
    stack: Stack, queued_job: dict[str, Any], last_event_id: str
) -> None:
    status, body = _status_of_stream(
        stack, f"/api/jobs/{queued_job['id']}/events", {"Last-Event-ID": last_event_id}
    )
    assert status == 422, body
    assert "Last-Event-ID" in body["message"]


def test_event_ids_beyond_the_32_bit_keys_mean_after_every_event(
    stack: Stack, queued_job: dict[str, Any]
) -> None:
    # Status events have 32-bit ids: a larger id (18 digits pass the pattern) was a 500 on
    # PostgreSQL ("integer out of range").
    errors = len(stack.server_errors)
    job_stream = f"/api/jobs/{queued_job['id']}/events"
    assert _status_of_stream(stack, job_stream, {"Last-Event-ID": f"0-{10**18 - 1}"})[0] == 200
    assert _status_of_stream(stack, "/api/events", {"Last-Event-ID": str(10**18 - 1)})[0] == 200
    assert stack.server_errors[errors:] == []


@pytest.mark.parametrize("last_event_id", [str(2**63), str(2**64), "-5", "x"])
def test_bad_last_event_id_on_the_user_stream_is_422(stack: Stack, last_event_id: str) -> None:
    status, body = _status_of_stream(stack, "/api/events", {"Last-Event-ID": last_event_id})
    assert status == 422, body
    assert "Last-Event-ID" in body["message"]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"spec": {"algo": "reinforce", "learning_rate": NaN}}', "learning_rate"),
        ('{"spec": {"algo": "reinforce", "gamma": Infinity}}', "gamma"),
        ('{"spec": {"algo": "reinforce", "vf_coef": -Infinity}}', "vf_coef"),
        ('{"spec": {"algo": "reinforce", "total_steps": 1e400}}', "total_steps"),
        ('{"spec": {"algo": "reinforce"}, "priority": NaN}', "priority"),
        ('{"spec": {"algo": "reinforce"}, "tags": [NaN]}', "tags"),
        ('{"spec": {"algo": "reinforce"}, "nonsense": Infinity}', "nonsense"),
    ],
)
def test_non_finite_numbers_are_422_naming_the_field(stack: Stack, raw: str, field: str) -> None:
    for path in ("/api/jobs", "/api/groups"):
        response = stack.client().post(path, content=raw, headers={"Content-Type": "application/json"})
        assert response.status_code == 422, (path, response.text)
        payload = response.json()  # strict JSON: no NaN or Infinity in the reply
        assert field in payload["message"]
        json.dumps(payload, allow_nan=False)


def test_body_over_the_limit_is_413_and_the_api_still_answers(stack: Stack) -> None:
    limit = stack.settings.max_body_bytes
    body = json.dumps({"spec": TINY_SPEC, "tags": ["a"] * (limit // 4)}).encode()
    assert len(body) > limit
    client = stack.client()
    response = client.post("/api/jobs", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413, response.text[:200]
    assert str(limit) in response.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts the bytes as they come
        for i in range(0, len(body), 65536):
            yield body[i : i + 65536]

    streamed = client.post("/api/groups", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413, streamed.text[:200]
    assert stack.client(auth=False).get("/healthz").json() == {"status": "ok"}


def test_422_reply_to_a_huge_list_is_short(stack: Stack) -> None:
    body = {"spec": TINY_SPEC, "tags": ["a"] * 100_000}
    assert len(json.dumps(body)) < stack.settings.max_body_bytes
    response = stack.client().post("/api/jobs", json=body)
    assert response.status_code == 422
    assert len(response.content) < 2000, len(response.content)
    assert "tags" in response.json()["message"]


def test_max_body_bytes_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.from_env().max_body_bytes == 1024 * 1024
    monkeypatch.setenv("RLSERVE_MAX_BODY_BYTES", "4096")
    assert Settings.from_env().max_body_bytes == 4096
    monkeypatch.setenv("RLSERVE_MAX_BODY_BYTES", "-1")
    with pytest.raises(ValueError, match="RLSERVE_MAX_BODY_BYTES"):
        Settings.from_env()


def test_openapi_declares_the_errors_and_the_rules_across_fields(tmp_path: Path) -> None:
    from app.main import create_app

    document = create_app(Settings(data_dir=tmp_path), reaper=False).openapi()
    paths = document["paths"]
    for path, item in paths.items():
        for method, operation in item.items():
            codes = set(operation["responses"])
            if operation.get("security"):
                assert {"401", "403"} <= codes, (method, path)
            if operation.get("parameters") or operation.get("requestBody"):
                assert operation["responses"]["422"]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ValidationErrorOut"
                }, (method, path)
            if "{job_id}" in path or "{group_id}" in path or "{study_id}" in path:
                assert "404" in codes, (method, path)
    for path in ("/api/jobs", "/api/groups", "/api/studies"):
        assert {"201", "400", "413", "422", "429"} <= set(paths[path]["post"]["responses"]), path
    for method, path in [
        ("post", "/api/jobs"),
        ("post", "/api/jobs/{job_id}/cancel"),
        ("delete", "/api/jobs/{job_id}"),
        ("get", "/api/jobs/{job_id}/policy"),
        ("delete", "/api/studies/{study_id}"),
    ]:
        assert "409" in paths[path][method]["responses"], (method, path)
    schemas = document["components"]["schemas"]
    group = schemas["GroupCreate"]["properties"]
    assert group["seeds"]["uniqueItems"] is True
    assert group["models"]["uniqueItems"] is True  # beside anyOf [array, null]: it binds arrays only
    spec = schemas["TrainSpec"]["properties"]
    assert "bptt_length <= rollout_length" in spec["bptt_length"]["description"]
    assert "CartPole-v1" in spec["env_id"]["enum"]
    offset = next(p for p in paths["/api/jobs"]["get"]["parameters"] if p["name"] == "offset")
    assert offset["schema"]["maximum"] < 2**63
