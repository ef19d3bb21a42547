"""SIGTERM stops the production API command even while event streams are open.

uvicorn waits for open connections before it shuts down, and an event stream never ends
by itself: the streams must end on the signal (app/hub.py), or `docker stop` hangs until
it kills the API, whose reaper meanwhile keeps re-queueing jobs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from app.db import session_scope, upgrade
from app.settings import Settings
from app.tokens import create_token
from tests.conftest import ROOT, TINY_SPEC, free_port, sse_events

# Exit well within this; before the fix it never exited while a client stayed connected.
EXIT_WITHIN = 10.0


def production_argv(port: int) -> list[str]:
    """The API command of docker-compose.yml, on 127.0.0.1:`port`."""
    command = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["api"]["command"]
    assert command[0] == "uvicorn" and "--workers" in command
    argv = [sys.executable, "-m", *command]
    argv[argv.index("--host") + 1] = "127.0.0.1"
    argv[argv.index("--port") + 1] = str(port)
    return argv


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, str]]:
    """The production command on an embedded data folder (no worker: jobs stay queued)."""
    settings = Settings(data_dir=tmp_path)
    upgrade(settings.database_url)
    with session_scope(settings.database_url) as session:
        token = create_token(session, "alice", "tests")
    port = free_port()
    env = {
        **os.environ,
        "RLSERVE_DATA_DIR": str(tmp_path),
        "RLSERVE_FRONTEND_DIR": str(tmp_path / "no-frontend"),
        "PYTHONPATH": str(ROOT),
    }
    with (tmp_path / "api.log").open("ab") as log:
        process = subprocess.Popen(
            production_argv(port),
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "api.log").read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the API did not start"
            time.sleep(0.1)
        yield process, url, token
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def follow(url: str, path: str, token: str, opened: threading.Event, ended: list[str]) -> None:
    """Read a stream until the server ends it; record how it ended."""
    try:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.stream("GET", f"{url}{path}", headers=headers, timeout=60) as response:
            assert response.status_code == 200
            for _event in sse_events(response):
                opened.set()
        ended.append("closed by the server")
    except Exception as error:
        ended.append(f"{type(error).__name__}: {error}")
    finally:
        opened.set()


def test_sigterm_ends_open_streams_and_the_api_exits(api: tuple[subprocess.Popen[bytes], str, str]) -> None:
    process, url, token = api
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    job = client.post("/api/jobs", json={"spec": TINY_SPEC}).json()  # stays queued: no worker
    client.close()
    ended: list[str] = []
    threads = []
    for path in (f"/api/jobs/{job['id']}/events", "/api/events", "/api/events"):
        opened = threading.Event()
        thread = threading.Thread(target=follow, args=(url, path, token, opened, ended), daemon=True)
        thread.start()
        assert opened.wait(30), "the stream sent nothing"
        threads.append(thread)
    assert ended == [], ended  # the streams are open

    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(EXIT_WITHIN)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the API still runs {EXIT_WITHIN:.0f} s after SIGTERM with streams open")
    assert code == 0 or code == -signal.SIGTERM, code
    for thread in threads:
        thread.join(10)
    assert ended == ["closed by the server"] * 3, ended
