"""The rlserve command: token create, submit --wait --download, up (and a clean Ctrl-C or SIGTERM)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import select

from app.auth import hash_token
from app.db import session_scope
from app.models import Token
from rlcore.export import load_policy
from tests.conftest import ROOT, TINY_SPEC, Stack, free_port

RLSERVE = [sys.executable, "-c", "from app.cli import main; main()"]


def _run(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RLSERVE, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_token_create_prints_a_working_token_once(stack: Stack) -> None:
    env = {
        **os.environ,
        "RLSERVE_DATA_DIR": str(stack.settings.data_dir),
        "DATABASE_URL": stack.settings.database_url,
    }
    result = _run(["token", "create", "carol"], env)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert token.startswith("rls_") and len(token) > 30
    me = stack.client(token=token).get("/api/me")
    assert me.json()["user"] == "carol"
    with session_scope(stack.settings.database_url) as session:
        stored = set(session.scalars(select(Token.token_hash)))
    assert hash_token(token) in stored and token not in stored  # stored hashed


def test_submit_wait_download(stack: Stack, tmp_path: Path) -> None:
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump({**TINY_SPEC, "total_steps": 1000}))
    env = {**os.environ, "RLSERVE_URL": stack.url, "RLSERVE_TOKEN": stack.token}
    out = tmp_path / "policy"
    result = _run(["submit", str(spec_file), "--wait", "--download", str(out), "--name", "cli"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "succeeded" in result.stdout
    assert {p.name for p in out.iterdir()} == {"policy.json", "policy.safetensors", "policy.onnx"}
    policy = load_policy(out)
    policy.reset()
    assert policy.act([0.0, 0.0, 0.0, 0.0]) in (0, 1)

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**TINY_SPEC, "total_steps": -5}))
    result = _run(["submit", str(bad)], env)
    assert result.returncode == 1 and "total_steps" in result.stderr


# SIGINT is Ctrl-C; SIGTERM is what `docker stop`, systemd and process managers send.
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_up_prints_the_dashboard_url_and_stops_cleanly(tmp_path: Path, stop: signal.Signals) -> None:
    port = free_port()
    env = {**os.environ, "RLSERVE_DATA_DIR": str(tmp_path / "data")}
    env.pop("DATABASE_URL", None)
    env.pop("CELERY_BROKER_URL", None)
    log = (tmp_path / "up.log").open("w")
    process = subprocess.Popen(
        [*RLSERVE, "up", "--port", str(port)], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        match = None
        while match is None:
            assert process.poll() is None, (tmp_path / "up.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "up.log").read_text()
            match = re.search(r"http://127\.0\.0\.1:(\d+)/\?token=(\S+)", (tmp_path / "up.log").read_text())
            time.sleep(0.2)
        assert int(match.group(1)) == port
        url, token = f"http://127.0.0.1:{port}", match.group(2)
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.2)
        headers = {"Authorization": f"Bearer {token}"}
        job = httpx.post(f"{url}/api/jobs", json={"spec": {**TINY_SPEC, "total_steps": 400}}, headers=headers)
        assert job.status_code == 201
        while (
            httpx.get(f"{url}/api/jobs/{job.json()['id']}", headers=headers).json()["status"] != "succeeded"
        ):
            assert time.monotonic() < deadline + 60, (tmp_path / "up.log").read_text()
            time.sleep(0.2)
        assert (tmp_path / "data" / "rlserve.db").is_file()
    finally:
        process.send_signal(stop)
        try:
            code = process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        log.close()
    assert code in (0, 128 + stop, -stop), (tmp_path / "up.log").read_text()
    workers = subprocess.run(["pgrep", "-f", f"rlserve-{process.pid}@"], capture_output=True, text=True)
    assert workers.stdout.strip() == "", "the worker outlived `rlserve up`"
