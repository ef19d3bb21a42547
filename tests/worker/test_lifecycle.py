"""Cancel (queued and running), retry, delete, idempotent POST, groups."""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

from rlcore.export import load_policy
from rlcore.trainer import last_checkpoint_step
from tests.conftest import TINY_SPEC, Stack

LONG = {"total_steps": 2_000_000, "checkpoint_interval": 1000}


def test_cancel_queued_and_running(stack: Stack, tmp_path: Path) -> None:
    client = stack.client()
    long = stack.submit(**LONG)
    job_dir = stack.settings.job_dir(long["id"])
    stack.wait_for(
        long["id"],
        lambda j: j["status"] == "running" and (last_checkpoint_step(job_dir) or 0) > 0,
        what="a checkpoint",
    )
    # While it runs, the policy downloads from its last checkpoint, in both formats.
    for fmt in ("safetensors", "onnx"):
        response = client.get(f"/api/jobs/{long['id']}/policy", params={"format": fmt})
        assert response.status_code == 200, response.text
        assert "-step" in response.headers["content-disposition"]
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            assert sorted(archive.namelist()) == ["policy.json", f"policy.{fmt}"]
            archive.extractall(tmp_path / fmt)
    config = json.loads((tmp_path / "onnx" / "policy.json").read_text())
    assert config["metadata"]["from_checkpoint"] is True and config["metadata"]["step"] > 0
    assert load_policy(tmp_path / "safetensors").act([0.0, 0.0, 0.0, 0.0]) in (0, 1)
    assert client.get(f"/api/jobs/{long['id']}/policy", params={"which": "best"}).status_code == 409
    # The only worker is busy, so this one waits in the queue: cancelled at once.
    queued = stack.submit()
    response = client.post(f"/api/jobs/{queued['id']}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert client.post(f"/api/jobs/{queued['id']}/cancel").json()["status"] == "cancelled"  # idempotent

    asked = time.monotonic()
    response = client.post(f"/api/jobs/{long['id']}/cancel")
    assert response.status_code == 200 and response.json()["cancel_requested"] is True
    job = stack.wait_finished(long["id"], timeout=10)
    assert time.monotonic() - asked < 10
    assert job["status"] == "cancelled" and job["step"] < LONG["total_steps"]
    assert job["has_policy"], job  # the last checkpoint's policy is kept and downloadable
    policy = client.get(f"/api/jobs/{long['id']}/policy")
    assert policy.status_code == 200
    assert client.post(f"/api/jobs/{long['id']}/cancel").status_code == 200

    # The cancelled queued job never ran, even after the worker got to its message.
    time.sleep(1.0)
    never = client.get(f"/api/jobs/{queued['id']}").json()
    assert never["status"] == "cancelled" and never["attempts"] == 0 and never["step"] == 0


def test_retry_and_delete(stack: Stack) -> None:
    client = stack.client()
    first = stack.submit(total_steps=400)
    assert client.delete(f"/api/jobs/{first['id']}").status_code in (409, 204)  # queued or running: 409
    done = stack.wait_finished(first["id"])
    assert done["status"] == "succeeded"
    retried = client.post(f"/api/jobs/{first['id']}/retry")
    assert retried.status_code == 201
    second = retried.json()
    assert second["id"] != first["id"] and second["spec"] == done["spec"]
    assert "retry of" in second["history"][0]["message"]
    assert stack.wait_finished(second["id"])["status"] == "succeeded"

    job_dir = stack.settings.job_dir(first["id"])
    assert (job_dir / "policy.safetensors").is_file()
    assert client.delete(f"/api/jobs/{first['id']}").status_code == 204
    assert client.get(f"/api/jobs/{first['id']}").status_code == 404
    assert client.get(f"/api/jobs/{first['id']}/metrics").status_code == 404
    assert not job_dir.exists()
    assert client.get(f"/api/jobs/{second['id']}").status_code == 200  # the retry is untouched


def test_delete_running_job_is_409(stack: Stack) -> None:
    client = stack.client()
    job = stack.submit(**LONG)
    stack.wait_for(job["id"], lambda j: j["status"] == "running", what="running")
    response = client.delete(f"/api/jobs/{job['id']}")
    assert response.status_code == 409 and "cancel" in response.json()["detail"]
    client.post(f"/api/jobs/{job['id']}/cancel")
    stack.wait_finished(job["id"], timeout=10)
    assert client.delete(f"/api/jobs/{job['id']}").status_code == 204


def test_idempotent_post(stack: Stack) -> None:
    client = stack.client()
    body = {"spec": {**TINY_SPEC, "total_steps": 200}, "name": "once"}
    key = {"Idempotency-Key": f"key-{stack.backend}-{time.time()}"}
    first = client.post("/api/jobs", json=body, headers=key)
    again = client.post("/api/jobs", json=body, headers=key)
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    other = client.post("/api/jobs", json={**body, "name": "twice"}, headers=key)
    assert other.status_code == 409
    # Keys are per user: bob's identical request makes bob's own job.
    bob = stack.client(token=stack.other_token).post("/api/jobs", json=body, headers=key)
    assert bob.status_code == 201 and bob.json()["id"] != first.json()["id"]
    stack.wait_finished(first.json()["id"])
    stack.wait_finished(bob.json()["id"], token=stack.other_token)


def test_group_of_two_models_by_two_seeds(stack: Stack) -> None:
    client = stack.client()
    response = client.post(
        "/api/groups",
        json={
            "spec": {**TINY_SPEC, "total_steps": 400, "algo": "a2c", "rollout_length": 25},
            "models": ["mlp", "gru"],
            "seeds": [1, 2],
            "name": "compare",
            "tags": ["grp"],
        },
    )
    assert response.status_code == 201, response.text
    group = response.json()
    assert group["models"] == ["mlp", "gru"] and group["seeds"] == [1, 2]
    combos = sorted((j["spec"]["model"], j["spec"]["seed"]) for j in group["jobs"])
    assert combos == [("gru", 1), ("gru", 2), ("mlp", 1), ("mlp", 2)]
    assert all(j["group_id"] == group["id"] and j["tags"] == ["grp"] for j in group["jobs"])
    for job in group["jobs"]:
        assert stack.wait_finished(job["id"])["status"] == "succeeded"
    listed = client.get("/api/jobs", params={"group": group["id"]}).json()
    assert listed["total"] == 4
    fetched = client.get(f"/api/groups/{group['id']}").json()
    assert {j["status"] for j in fetched["jobs"]} == {"succeeded"}
    assert group["id"] in [g["id"] for g in client.get("/api/groups").json()["items"]]
    assert stack.client(token=stack.other_token).get(f"/api/groups/{group['id']}").status_code == 404
