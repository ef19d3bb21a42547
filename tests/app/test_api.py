"""API contract: auth, ownership, validation errors, choices, health. No job needs to run here."""

from __future__ import annotations

import pytest

from app.settings import Settings
from rlcore.spec import ALGORITHM_DEFAULTS, Algorithm, TrainSpec
from tests.conftest import TINY_SPEC, Stack


def test_no_token_is_401_and_bad_token_is_401(stack: Stack) -> None:
    anonymous = stack.client(auth=False)
    for path in ("/api/jobs", "/api/envs", "/api/models", "/api/groups", "/api/me"):
        response = anonymous.get(path)
        assert response.status_code == 401, path
        assert "token" in response.json()["detail"]
    assert anonymous.post("/api/jobs", json={"spec": TINY_SPEC}).status_code == 401
    assert stack.client(token="rls_not-a-token").get("/api/jobs").status_code == 401


def test_token_in_the_query_is_refused_everywhere(stack: Stack) -> None:
    # URLs end up in access logs; the dashboard sends the header, downloads and streams included.
    jid = stack.submit(total_steps=200)["id"]
    anonymous = stack.client(auth=False)
    for path in ("/api/me", "/api/jobs", f"/api/jobs/{jid}", f"/api/jobs/{jid}/policy", "/api/events"):
        response = anonymous.get(path, params={"token": stack.token})
        assert response.status_code == 401, path
        assert "not accepted" in response.json()["detail"]
    with anonymous.stream("GET", f"/api/jobs/{jid}/events", params={"token": stack.token}) as response:
        assert response.status_code == 401


def test_another_users_job_is_404_everywhere(stack: Stack) -> None:
    job = stack.submit(total_steps=400)
    bob = stack.client(token=stack.other_token)
    jid = job["id"]
    for method, path in [
        ("GET", f"/api/jobs/{jid}"),
        ("GET", f"/api/jobs/{jid}/metrics"),
        ("GET", f"/api/jobs/{jid}/policy"),
        ("GET", f"/api/jobs/{jid}/events"),
        ("POST", f"/api/jobs/{jid}/cancel"),
        ("POST", f"/api/jobs/{jid}/retry"),
        ("DELETE", f"/api/jobs/{jid}"),
    ]:
        assert bob.request(method, path).status_code == 404, (method, path)
    assert jid not in [j["id"] for j in bob.get("/api/jobs").json()["items"]]
    assert stack.client().get("/api/jobs/../../etc/passwd").status_code == 404
    assert stack.client().get("/api/jobs/not-a-job").status_code == 404
    stack.wait_finished(jid)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"spec": {**TINY_SPEC, "total_steps": 0}}, "total_steps"),
        ({"spec": {**TINY_SPEC, "total_steps": "many"}}, "total_steps"),
        ({"spec": {**TINY_SPEC, "algo": "dqn"}}, "algo"),
        ({"spec": {**TINY_SPEC, "model": "transformer"}}, "model"),
        ({"spec": {**TINY_SPEC, "env_id": "../../etc/passwd"}}, "env_id"),
        ({"spec": {**TINY_SPEC, "learning_rate": -1}}, "learning_rate"),
        ({"spec": {**TINY_SPEC, "device": "tpu"}}, "device"),
        ({"spec": {**TINY_SPEC, "vf_coef": 0.5}}, "vf_coef"),  # reinforce trains no critic
        ({"spec": {**TINY_SPEC, "algo": "a2c", "epochs": 4}}, "epochs"),
        ({"spec": {**TINY_SPEC, "unknown_knob": 1}}, "unknown_knob"),
        ({"spec": {**TINY_SPEC, "bptt_length": 500}}, "spec"),  # a model_validator error
        ({"spec": {**TINY_SPEC, "num_envs": 512, "rollout_length": 8192}}, "spec"),
        ({"spec": TINY_SPEC, "priority": 99}, "priority"),
        ({"spec": TINY_SPEC, "tags": ["no spaces allowed"]}, "tags"),
        ({"spec": TINY_SPEC, "extra": True}, "extra"),
        ({}, "spec"),
        ({"spec": "not an object"}, "spec"),
    ],
)
def test_bad_spec_is_422_naming_the_field(stack: Stack, body: dict, field: str) -> None:
    response = stack.client().post("/api/jobs", json=body)
    assert response.status_code == 422, response.text
    payload = response.json()
    locations = [".".join(str(p) for p in error["loc"]) for error in payload["detail"]]
    assert any(field in loc for loc in locations), locations
    assert field in payload["message"]


def test_a_field_the_algorithm_ignores_is_refused_with_the_reason(stack: Stack) -> None:
    response = stack.client().post("/api/jobs", json={"spec": {**TINY_SPEC, "algo": "a2c", "epochs": 4}})
    assert response.status_code == 422, response.text
    assert response.json()["message"] == "spec.epochs: does not apply to a2c (it makes one pass per rollout)"


def test_a_spec_too_large_for_memory_is_422_saying_why(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    client = stack.client()
    huge = {**TINY_SPEC, "algo": "ppo", "num_envs": 512, "rollout_length": 1953, "hidden_size": 2048}
    for spec, named in [
        ({**huge, "model": "lstm", "num_layers": 8}, "hidden_size 2048 x num_layers 8"),
        ({**huge, "model": "window", "window_length": 256}, "window_length 256 x hidden_size 2048"),
    ]:
        response = client.post("/api/jobs", json={"spec": spec})
        assert response.status_code == 422, response.text
        payload = response.json()
        assert [error["loc"] for error in payload["detail"]] == [["body", "spec"]]
        assert payload["message"].startswith("spec: ")
        for part in ["this spec needs about", "(limit 4 GiB)", "512 num_envs x 1953 rollout_length", named]:
            assert part in payload["message"], part

    # A group names the model for which its spec is too large.
    medium = {
        **TINY_SPEC,
        "algo": "ppo",
        "num_envs": 64,
        "rollout_length": 512,
        "hidden_size": 1024,
        "minibatches": 1,
    }
    response = client.post("/api/groups", json={"spec": medium, "seeds": [0], "models": ["mlp", "lstm"]})
    assert response.status_code == 422, response.text
    assert "with model lstm: Value error, this spec needs about" in response.json()["message"]

    job = stack.submit()  # a normal spec is still accepted
    stack.wait_finished(job["id"])
    # A retry is checked against the limit of today, which the operator may have lowered.
    monkeypatch.setenv("RLSERVE_MAX_JOB_MEMORY", "1KiB")
    response = client.post(f"/api/jobs/{job['id']}/retry")
    assert response.status_code == 422, response.text
    assert "(limit 1 KiB)" in response.json()["message"]


def test_malformed_json_is_422_not_500(stack: Stack) -> None:
    response = stack.client().post(
        "/api/jobs", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422


def test_bad_group_and_query_parameters_are_422(stack: Stack) -> None:
    client = stack.client()
    assert client.post("/api/groups", json={"spec": TINY_SPEC, "seeds": []}).status_code == 422
    assert client.post("/api/groups", json={"spec": TINY_SPEC, "seeds": [1, 1]}).status_code == 422
    response = client.post(
        "/api/groups", json={"spec": {**TINY_SPEC, "bptt_length": 100, "rollout_length": 50}, "seeds": [0]}
    )
    assert response.status_code == 422
    assert client.get("/api/jobs", params={"status": "sleeping"}).status_code == 422
    assert client.get("/api/jobs", params={"limit": 0}).status_code == 422


def test_envs_and_models_describe_the_form(stack: Stack) -> None:
    client = stack.client()
    envs = client.get("/api/envs").json()
    ids = {e["id"] for e in envs}
    assert {"CartPole-v0", "CartPole-v1", "CartPoleMasked-v1"} <= ids
    assert any(e["needs_memory"] for e in envs)
    models = client.get("/api/models").json()
    assert set(models["algorithms"]) == {"reinforce", "a2c", "ppo"}
    assert {"mlp", "gru", "lstm"} <= set(models["models"])
    assert models["algorithm_defaults"]["ppo"] == ALGORITHM_DEFAULTS[Algorithm.ppo]
    # Each algorithm lists the fields it uses, and defaults only for those.
    assert models["algorithm_fields"]["ppo"] == list(models["spec_schema"]["properties"])
    ignores = {"a2c": {"epochs", "clip_range", "target_kl"}, "reinforce": {"vf_coef", "gae_lambda", "epochs"}}
    for algo, ignored in ignores.items():
        assert not ignored & set(models["algorithm_fields"][algo])
        assert not ignored & set(models["algorithm_defaults"][algo])
        assert {"learning_rate", "ent_coef", "rollout_length"} <= set(models["algorithm_fields"][algo])
    assert models["spec_defaults"]["vf_coef"] == TrainSpec.model_fields["vf_coef"].default
    assert "total_steps" in models["spec_schema"]["properties"]


def test_health_ready_and_docs(stack: Stack) -> None:
    anonymous = stack.client(auth=False)
    assert anonymous.get("/healthz").json() == {"status": "ok"}
    ready = anonymous.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ok", "database": "ok", "broker": "ok"}
    assert anonymous.get("/docs").status_code == 200
    assert "/api/jobs/{job_id}/events" in anonymous.get("/openapi.json").json()["paths"]


def test_list_filters_and_pagination(stack: Stack) -> None:
    client = stack.client()
    tag = f"page-{stack.backend}"
    ids = []
    for i in range(3):
        response = client.post(
            "/api/jobs", json={"spec": {**TINY_SPEC, "total_steps": 200}, "tags": [tag], "name": f"p{i}"}
        )
        assert response.status_code == 201
        ids.append(response.json()["id"])
    listed = client.get("/api/jobs", params={"tag": tag, "limit": 2}).json()
    assert listed["total"] == 3
    assert [j["id"] for j in listed["items"]] == ids[::-1][:2]  # newest first
    rest = client.get("/api/jobs", params={"tag": tag, "limit": 2, "offset": 2}).json()
    assert [j["id"] for j in rest["items"]] == [ids[0]]
    for jid in ids:
        stack.wait_finished(jid)
    done = client.get("/api/jobs", params={"tag": tag, "status": "succeeded,failed"}).json()
    assert done["total"] == 3
    assert client.get("/api/jobs", params={"tag": tag, "status": "queued"}).json()["total"] == 0


def test_the_memory_limit_setting_is_checked_at_start(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("RLSERVE_MAX_JOB_MEMORY", "16GiB")
    assert Settings(data_dir=tmp_path).max_job_memory == 16 * 2**30
    monkeypatch.setenv("RLSERVE_MAX_JOB_MEMORY", "sixteen gigs")
    with pytest.raises(ValueError, match="RLSERVE_MAX_JOB_MEMORY: not a memory size"):
        Settings.from_env()
