"""An operator's env plugin (examples/rlserve-example-envs) in the service: listed, validated, trained."""

from __future__ import annotations

from tests.conftest import Stack

EXAMPLE = "example/Majority-v0"


def test_the_example_env_is_listed_and_a_job_on_it_trains(stack: Stack) -> None:
    client = stack.client()
    envs = {env["id"]: env for env in client.get("/api/envs").json()}
    assert envs[EXAMPLE]["family"] == "plugin" and envs[EXAMPLE]["needs_memory"]
    assert envs[EXAMPLE]["action_names"] == ["minus", "plus"] and envs[EXAMPLE]["options"] == []
    assert "CartPole-v1" in envs and envs["CartPole-v1"]["family"] == "classic"
    schema = client.get("/api/models").json()["spec_schema"]
    assert EXAMPLE in schema["properties"]["env_id"]["enum"]

    # Users name listed ids only, never the code behind them.
    refused = client.post("/api/jobs", json={"spec": {"env_id": "rlserve_example_envs:MAJORITY"}})
    assert refused.status_code == 422 and "env_id" in refused.text

    # The worker, a process of its own, loaded the plugin too: it validates and builds the env.
    job = stack.submit(
        env_id=EXAMPLE, algo="a2c", model="gru", total_steps=256, num_envs=4, rollout_length=16
    )
    job = stack.wait_finished(job["id"], timeout=90)
    assert job["status"] == "succeeded", job
    assert job["step"] >= 256 and job["has_policy"]
    assert "charts/episodic_return" in job["latest_metrics"]
