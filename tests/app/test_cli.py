"""The rlserve command: token create|list|revoke, submit --wait --download, extend, fork, up (port, token,
logs, stop)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import select

from app.db import session_scope
from app.models import Token
from app.tokens import hash_token
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


def test_extend_and_fork_from_the_command_line(stack: Stack) -> None:
    job = stack.submit(algo="a2c", total_steps=400)  # 200 steps per update: ends exactly at its total
    assert stack.wait_finished(job["id"])["status"] == "succeeded"
    env = {**os.environ, "RLSERVE_URL": stack.url, "RLSERVE_TOKEN": stack.token}

    result = _run(["extend", job["id"], "--total-steps", "800", "--wait"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"job {job['id']} succeeded at step 800" in result.stdout

    result = _run(["fork", job["id"], "learning_rate=2e-3", "total_steps=1200", "--name", "faster"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"forked from {job['id']} at step 800" in result.stdout
    child_id = re.search(r"job (\w+) queued", result.stdout).group(1)  # type: ignore[union-attr]
    child = stack.wait_finished(child_id)
    assert child["spec"]["learning_rate"] == 2e-3 and child["name"] == "faster" and child["step"] == 1200

    result = _run(["fork", job["id"], "hidden_size=8", "total_steps=1200"], env)
    assert result.returncode == 1 and "spec.hidden_size" in result.stderr
    result = _run(["extend", job["id"], "--total-steps", "800"], env)
    assert result.returncode == 1 and "total_steps" in result.stderr


def test_token_create_list_revoke_and_expiry(stack: Stack) -> None:
    env = {
        **os.environ,
        "RLSERVE_DATA_DIR": str(stack.settings.data_dir),
        "DATABASE_URL": stack.settings.database_url,
    }
    token = _run(["token", "create", "heidi", "--label", "ci", "--expires-in", "30d"], env).stdout.strip()
    client = stack.client(token=token)
    assert client.get("/api/me").status_code == 200
    scraper = _run(["token", "create", "prometheus", "--label", "cli-scraper", "--scope", "metrics"], env)
    assert scraper.returncode == 0, scraper.stderr

    listing = _run(["token", "list"], env)
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.splitlines()[0].split() == [
        "NAME",
        "USER",
        "SCOPE",
        "STATE",
        "CREATED",
        "EXPIRES",
        "LAST",
        "USED",
    ]
    row = next(
        line.split() for line in listing.stdout.splitlines() if line.startswith("ci ") and "heidi" in line
    )
    assert row[:4] == ["ci", "heidi", "api", "active"]
    expires = datetime.strptime(" ".join(row[6:8]), "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
    assert any(
        line.split()[:3] == ["cli-scraper", "prometheus", "metrics"] for line in listing.stdout.splitlines()
    )
    assert token not in listing.stdout and scraper.stdout.strip() not in listing.stdout  # never the secret

    revoked = _run(["token", "revoke", "ci", "--user", "heidi"], env)
    assert revoked.returncode == 0, revoked.stderr
    response = client.get("/api/me")
    assert response.status_code == 401 and "revoked" in response.json()["detail"]
    listing = _run(["token", "list"], env).stdout
    assert any(line.split()[:4] == ["ci", "heidi", "api", "revoked"] for line in listing.splitlines())

    again = _run(["token", "revoke", "ci", "--user", "heidi"], env)
    assert again.returncode == 1 and "no unrevoked token named 'ci'" in again.stderr
    bad = _run(["token", "create", "heidi", "--expires-in", "soon"], env)
    assert bad.returncode == 1 and "--expires-in" in bad.stderr and "Traceback" not in bad.stderr
    past = _run(["token", "create", "heidi", "--expires", "2020-01-01"], env)
    assert past.returncode == 1 and "not in the future" in past.stderr


def _up_env(data: Path) -> dict[str, str]:
    env = {**os.environ, "RLSERVE_DATA_DIR": str(data)}
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "RLSERVE_TOKEN"):
        env.pop(name, None)
    return env


def _start_up(log_path: Path, data: Path, *args: str) -> tuple[subprocess.Popen[bytes], re.Match[str]]:
    """`rlserve up` on a free port; returns once it printed the dashboard URL."""
    port = free_port()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*RLSERVE, "up", "--port", str(port), *args],
            env=_up_env(data),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while True:
        match = re.search(r"http://127\.0\.0\.1:(\d+)/\?token=(\S+)", log_path.read_text())
        if match is not None:
            assert int(match.group(1)) == port
            return process, match
        assert process.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes], stop: int = signal.SIGINT) -> int:
    process.send_signal(stop)
    try:
        return process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


# SIGINT is Ctrl-C; SIGTERM is what `docker stop`, systemd and process managers send.
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_up_prints_the_dashboard_url_once_listening_and_stops_cleanly(
    tmp_path: Path, stop: signal.Signals
) -> None:
    data = tmp_path / "data"
    log_path = tmp_path / "up.log"
    process, match = _start_up(log_path, data)
    try:
        url, token = f"http://127.0.0.1:{match.group(1)}", match.group(2)
        # No retry: the URL is printed only once the server accepts connections.
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
        deadline = time.monotonic() + 60
        while httpx.get(f"{url}/readyz", timeout=5).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        headers = {"Authorization": f"Bearer {token}"}
        job = httpx.post(f"{url}/api/jobs", json={"spec": {**TINY_SPEC, "total_steps": 400}}, headers=headers)
        assert job.status_code == 201
        while (
            httpx.get(f"{url}/api/jobs/{job.json()['id']}", headers=headers).json()["status"] != "succeeded"
        ):
            assert time.monotonic() < deadline + 60, log_path.read_text()
            time.sleep(0.2)
        assert httpx.get(f"{url}/api/me", params={"token": token}).status_code == 401
        assert (data / "rlserve.db").is_file()
    finally:
        code = _stop(process, stop)
    out = log_path.read_text()
    assert code in (0, 128 + stop, -stop), out
    workers = subprocess.run(["pgrep", "-f", f"rlserve-{process.pid}@"], capture_output=True, text=True)
    assert workers.stdout.strip() == "", "the worker outlived `rlserve up`"
    # The terminal shows the URL (the token's only appearance) and little else; Celery talks to its log.
    assert out.count(token) == 1, out
    assert str(data / "worker.log") in out
    assert "celery" not in out.lower() and "superuser" not in out, out
    assert "[queues]" in (data / "worker.log").read_text()


def test_up_on_a_taken_port_says_so_and_exits_nonzero(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*RLSERVE, "up", "--port", str(port)],
            env=_up_env(tmp_path / "data"),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"port {port} is in use; pass --port" in result.stderr
    assert "Traceback" not in result.stderr and "Dashboard" not in result.stdout
    assert not (tmp_path / "data" / "worker.log").exists()  # nothing was started


def test_up_reuses_its_token_until_revoked(tmp_path: Path) -> None:
    data = tmp_path / "data"
    tokens = []
    for attempt in range(3):
        if attempt == 2:
            revoked = _run(["token", "revoke", "up", "--user", "local"], _up_env(data))
            assert revoked.returncode == 0, revoked.stderr
        process, match = _start_up(tmp_path / f"up{attempt}.log", data, "--no-worker")
        _stop(process)
        tokens.append(match.group(2))
        assert (data / "local-token").read_text().strip() == match.group(2)
        assert stat.S_IMODE((data / "local-token").stat().st_mode) == 0o600
    assert tokens[0] == tokens[1] != tokens[2]
    listing = _run(["token", "list"], _up_env(data)).stdout
    assert [line.split()[3] for line in listing.splitlines() if line.startswith("up ")] == [
        "revoked",
        "active",
    ]


def test_the_production_command_never_logs_a_token(tmp_path: Path) -> None:
    """docker-compose's API command, run for real: its access log shows requests, never a token."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    command = list(compose["services"]["api"]["command"])
    assert command[0] == "uvicorn"
    port = free_port()
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = str(port)
    env = {**_up_env(tmp_path / "data"), "PYTHONPATH": str(ROOT)}
    token = _run(["token", "create", "ivan"], env).stdout.strip()
    assert token.startswith("rls_")
    log_path = tmp_path / "api.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", *command], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        httpx.get(f"{url}/api/me", params={"token": token})  # refused (test_api.py), yet logged
        assert httpx.get(f"{url}/", params={"token": token}).status_code == 200  # the dashboard link
        assert httpx.get(f"{url}/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    finally:
        _stop(process, signal.SIGTERM)
    out = log_path.read_text()
    assert '"GET /api/me?token=[redacted] HTTP/1.1"' in out, out
    assert '"GET /?token=[redacted] HTTP/1.1" 200' in out, out
    assert token not in out and token[4:] not in out, out


def test_worker_command_becomes_the_celery_worker_and_stops_on_sigterm(tmp_path: Path) -> None:
    """`rlserve worker` execs `python -m celery -A worker.celery_app worker`: same pid, its own program."""
    log_path = tmp_path / "worker.out"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*RLSERVE, "worker", "--queues", "cpu"],
            env=_up_env(tmp_path / "data"),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while f"rlserve-{process.pid}@" not in log_path.read_text() or " ready." not in log_path.read_text():
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        argv = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")
        assert argv[1:5] == [b"-m", b"celery", b"-A", b"worker.celery_app"], argv
        assert b"app.cli" not in b" ".join(argv), argv
    finally:
        code = _stop(process, signal.SIGTERM)
    assert code == 0, log_path.read_text()


def test_worker_per_gpu_pins_one_worker_to_each_gpu_and_stops_them_all(tmp_path: Path) -> None:
    """`rlserve worker --gpus 0,1`: two Celery workers, each seeing only its own GPU id."""
    log_path = tmp_path / "workers.out"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*RLSERVE, "worker", "--gpus", "0,1", "--queues", "gpu"],
            env=_up_env(tmp_path / "data"),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while log_path.read_text().count(" ready.") < 2:
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        deadline = time.monotonic() + 30
        while log_path.read_text().count("rlserve worker: GPU") < 2:
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        out = log_path.read_text()
        assert "CUDA_VISIBLE_DEVICES=0)" in out and "CUDA_VISIBLE_DEVICES=1)" in out, out
    finally:
        code = _stop(process, signal.SIGTERM)
    assert code == 0, log_path.read_text()
    assert log_path.read_text().count("rlserve-") >= 2  # two worker names, one per child


def test_worker_gpus_all_without_a_gpu_says_so(tmp_path: Path) -> None:
    result = _run(["worker", "--gpus", "all"], {**_up_env(tmp_path / "data"), "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 1 and "no CUDA GPU is visible" in result.stderr, result
