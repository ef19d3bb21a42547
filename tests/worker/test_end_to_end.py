"""Submit -> a real worker runs it -> points -> succeeded -> the policy runs outside the service."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import onnxruntime as ort

from rlcore.export import load_policy
from rlcore.spec import ALGORITHM_DEFAULTS, Algorithm
from tests.conftest import Stack


def _unzip(content: bytes, folder: Path) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        archive.extractall(folder)
        return sorted(archive.namelist())


def _mean_return(act, episodes: int = 20, seed: int = 123) -> float:  # type: ignore[no-untyped-def]
    env = gym.make("CartPole-v0")
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        act(None)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(act(obs))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


def test_job_runs_and_policy_downloads_and_runs(stack: Stack, tmp_path: Path) -> None:
    client = stack.client()
    created = client.post(
        "/api/jobs",
        json={
            "spec": {
                "algo": "reinforce",
                "model": "mlp",
                "env_id": "CartPole-v0",
                "total_steps": 12_000,
                "num_envs": 8,
                "rollout_length": 100,
                "learning_rate": 0.02,
            },
            "name": "e2e",
            "tags": ["e2e"],
        },
    )
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["status"] == "queued" and job["queue"] == "cpu"
    # The algorithm's defaults were filled in, and the fields it does not use left out.
    assert job["spec"]["ent_coef"] == ALGORITHM_DEFAULTS[Algorithm.reinforce]["ent_coef"]
    assert "vf_coef" not in job["spec"]
    assert client.get(f"/api/jobs/{job['id']}/policy").status_code == 409

    running = stack.wait_for(job["id"], lambda j: j["step"] > 0, what="first points")
    assert running["status"] in ("running", "succeeded")
    assert running["worker_host"] and running["device"] == "cpu"

    job = stack.wait_finished(job["id"], timeout=90)
    assert job["status"] == "succeeded", job
    assert [h["status"] for h in job["history"]] == ["queued", "running", "succeeded"]
    assert job["step"] >= 12_000 and job["progress"] == 100.0
    assert job["attempts"] == 1 and job["error"] is None
    assert job["has_policy"] and {a["kind"] for a in job["artifacts"]} >= {"policy", "checkpoint"}
    assert job["latest_metrics"]["charts/episodic_return"] > 0
    assert job["mean_return"] is not None and job["started_at"] <= job["finished_at"]

    metrics = client.get(f"/api/jobs/{job['id']}/metrics", params={"max_points": 0}).json()
    steps = metrics["series"]["perf/sps"]["steps"]
    assert steps == sorted(set(steps)) and steps[-1] == job["step"]
    # REINFORCE updates once whole episodes of at least 8 x 100 steps have ended.
    assert len(steps) == metrics["total_points"] == job["points_written"] <= 12_000 // 800 + 1
    assert "charts/episodic_return" in metrics["keys"] and "losses/policy_loss" in metrics["keys"]
    small = client.get(f"/api/jobs/{job['id']}/metrics", params={"max_points": 4, "keys": "perf/sps"}).json()
    assert list(small["series"]) == ["perf/sps"] and len(small["series"]["perf/sps"]["steps"]) <= 4
    assert small["downsampled"] is True
    since = client.get(f"/api/jobs/{job['id']}/metrics", params={"since_step": steps[-3]}).json()
    assert since["series"]["perf/sps"]["steps"] == steps[-2:]
    text = client.get(f"/api/jobs/{job['id']}/metrics", params={"format": "csv"})
    assert text.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(text.text)))
    assert rows[0][0] == "step" and len(rows) == len(steps) + 1

    # safetensors + config: loads with rlcore and reaches the job's return, within noise.
    response = client.get(f"/api/jobs/{job['id']}/policy", params={"format": "safetensors"})
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    assert _unzip(response.content, tmp_path / "st") == ["policy.json", "policy.safetensors"]
    policy = load_policy(tmp_path / "st", seed=0)

    def torch_act(obs):  # type: ignore[no-untyped-def]
        if obs is None:
            policy.reset()
            return None
        return policy.act(obs)

    reached = _mean_return(torch_act)
    reported = job["mean_return"]
    assert reached >= 0.5 * reported, (reached, reported)

    # ONNX: runs in onnxruntime with the hidden state as explicit input/output.
    response = client.get(f"/api/jobs/{job['id']}/policy", params={"format": "onnx"})
    assert _unzip(response.content, tmp_path / "onnx") == ["policy.json", "policy.onnx"]
    session = ort.InferenceSession(str(tmp_path / "onnx" / "policy.onnx"))
    inputs = {i.name: i for i in session.get_inputs()}
    rng = np.random.default_rng(0)
    memory: list[np.ndarray] = []

    def onnx_act(obs):  # type: ignore[no-untyped-def]
        if obs is None:  # episode start: zero state (recurrent exports take and return it)
            memory.clear()
            return None
        feed = {"obs": np.asarray(obs, dtype=np.float32)[None]}
        if "state" in inputs:
            shape = [1, *inputs["state"].shape[1:]]
            feed["state"] = memory[-1] if memory else np.zeros(shape, dtype=np.float32)
        outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, feed), strict=True))
        if "state_out" in outputs:
            memory.append(outputs["state_out"])
        logits = outputs["logits"][0].astype(np.float64)
        probs = np.exp(logits - logits.max())
        return int(rng.choice(len(probs), p=probs / probs.sum()))

    assert _mean_return(onnx_act) >= 0.5 * reported

    best = client.get(f"/api/jobs/{job['id']}/policy", params={"which": "best"})
    assert best.status_code == 200
