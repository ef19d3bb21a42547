"""A job trains on the real worker, then a replay and a probe of its policy run there too."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from rlcore.export import load_policy
from tests.conftest import Stack


def test_replay_of_a_trained_cartpole_policy(stack: Stack, tmp_path: Path) -> None:
    client = stack.client()
    job = stack.wait_finished(stack.submit()["id"])
    assert job["status"] == "succeeded", job
    created = client.post(f"/api/jobs/{job['id']}/replays", json={"seed": 4, "deterministic": False})
    assert created.status_code == 202, created.text
    replay = stack.wait_replay(created.json()["id"])
    assert replay["status"] == "ready", replay
    assert replay["has_video"] and replay["error"] is None and replay["finished_at"]
    data = replay["data"]
    steps = data["steps"]
    assert steps > 1 and data["env_id"] == "CartPole-v0" and data["frame_source"] == "render"
    for key in ("observations", "actions", "action_probs", "values", "rewards"):
        assert len(data[key]) == steps, key
    assert np.array(data["hidden"]["values"]).shape == (steps, data["hidden"]["size"])

    video = client.get(f"/api/replays/{replay['id']}/video")
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert iio.imread(video.content, extension=".mp4", plugin="FFMPEG", index=None).shape[0] == steps

    # The stored probabilities are the downloaded policy's on the stored observations.
    download = client.get(f"/api/jobs/{job['id']}/policy")
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        archive.extractall(tmp_path)
    policy = load_policy(tmp_path)
    policy.reset()
    probs = [policy.action_probs(np.array(obs, dtype=np.float32)) for obs in data["observations"]]
    np.testing.assert_allclose(np.array(data["action_probs"]), np.array(probs), atol=1e-5)

    # The files are the job's: deleting it removes the replay, and its folder with them.
    assert client.delete(f"/api/jobs/{job['id']}").status_code == 204
    assert client.get(f"/api/replays/{replay['id']}").status_code == 404
    assert not stack.settings.job_dir(job["id"]).exists()


def test_probe_of_a_masked_cartpole_policy(stack: Stack) -> None:
    client = stack.client()
    job = stack.wait_finished(stack.submit(env_id="CartPoleMasked-v1", model="gru")["id"])
    assert job["status"] == "succeeded", job
    created = client.post(
        f"/api/jobs/{job['id']}/replays", json={"kind": "probe", "episodes": 8, "max_steps": 100}
    )
    assert created.status_code == 202, created.text
    probe = stack.wait_replay(created.json()["id"])
    assert probe["status"] == "ready", probe
    assert not probe["has_video"]
    assert client.get(f"/api/replays/{probe['id']}/video").status_code == 409
    names = {v["name"] for v in probe["data"]["variables"]}
    assert names == {"cart_velocity", "pole_angular_velocity"}
    assert probe["data"]["episodes"] == {"train": 6, "test": 2}


def test_a_replay_that_cannot_run_fails_with_its_reason(stack: Stack) -> None:
    client = stack.client()
    job = stack.wait_finished(stack.submit()["id"])
    # The policy's weights are gone (a disk problem): the row still says it has a policy.
    (stack.settings.job_dir(job["id"]) / "policy.safetensors").unlink()
    created = client.post(f"/api/jobs/{job['id']}/replays", json={"max_steps": 10})
    assert created.status_code == 202, created.text
    replay = stack.wait_replay(created.json()["id"])
    assert replay["status"] == "failed" and "safetensors" in replay["error"], replay
    assert replay["data"] is None and not replay["has_video"]
    assert client.get(f"/api/replays/{replay['id']}/video").status_code == 409
