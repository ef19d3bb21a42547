"""Service fixtures shared by the app, worker and browser tests.

- `stack`: API (uvicorn in a thread of this process) + a REAL Celery worker process,
  parametrized over the two deployments: `embedded` (SQLite + kombu's filesystem broker)
  and `postgres` (a fresh PostgreSQL database + Redis at 127.0.0.1, unique queue names).
- `live_server`: an embedded stack for the browser tests; `.url` and `.token`.

Every stack records the 5xx responses its API sent; the fixture fails the run if any.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("RLSERVE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("RLSERVE_TEST_REDIS", "redis://127.0.0.1:6379/0")
# Short heartbeats so a killed worker's job is re-queued within seconds in the tests.
HEARTBEAT_INTERVAL = 0.5
HEARTBEAT_TIMEOUT = 4.0

# The tiny job most tests run: a few seconds on one CPU core.
TINY_SPEC: dict[str, Any] = {
    "algo": "reinforce",
    "model": "mlp",
    "env_id": "CartPole-v0",
    "total_steps": 3000,
    "num_envs": 4,
    "rollout_length": 50,
}


def sse_events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The events of a Server-Sent Events response: {"id", "event", "data" (JSON-decoded)}."""
    current: dict[str, Any] = {}
    for line in response.iter_lines():
        if line.startswith("id: "):
            current["id"] = line[4:]
        elif line.startswith("event: "):
            current["event"] = line[7:]
        elif line.startswith("data: "):
            current["data"] = json.loads(line[6:])
        elif line == "" and "event" in current:
            yield current
            current = {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WorkerProcess:
    """`celery -A worker.celery_app worker` as a subprocess in its own process group."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "RLSERVE_DATA_DIR": str(self.settings.data_dir),
            "DATABASE_URL": self.settings.database_url,
            "CELERY_BROKER_URL": self.settings.broker_url,
            "RLSERVE_QUEUE_PREFIX": self.settings.queue_prefix,
            "RLSERVE_HEARTBEAT_INTERVAL": str(self.settings.heartbeat_interval),
            "RLSERVE_HEARTBEAT_TIMEOUT": str(self.settings.heartbeat_timeout),
            "RLSERVE_MAX_ATTEMPTS": str(self.settings.max_attempts),
            "PYTHONPATH": str(ROOT),
        }

    def start(self, timeout: float = 120) -> None:
        """Start the worker and wait until Celery says it consumes (imports take a while
        on a loaded machine; a test's own timeouts should not pay for them)."""
        from app.cli import worker_argv

        argv = [sys.executable, "-m", "celery", "-A", "worker.celery_app"]
        argv += worker_argv(self.settings, "cpu,gpu", 1, "info")
        seen = len(self.log())
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            argv, env=self.env(), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout
        while " ready." not in self.log()[seen:]:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not become ready:\n{self.log()[seen:][-4000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the worker and its pool child at once, as an OOM killer or a power cut would."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def interrupt(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        """Send `sig` to the worker's main process only (as `docker stop` does); its exit code."""
        assert self.process is not None and self.process.poll() is None, "the worker is not running"
        self.process.send_signal(sig)
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class ThreadedServer:
    """uvicorn serving the app in a thread of the test process (so tests can read app.state)."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", timeout_graceful_shutdown=2
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@dataclass
class Stack:
    """A running API + worker, with two users' tokens."""

    backend: str
    settings: Settings
    url: str
    token: str
    other_token: str
    app: Any
    worker: WorkerProcess
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def server_errors(self) -> list[str]:
        return self.app.state.server_errors

    def client(self, token: str | None = None, auth: bool = True) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.token}"} if auth else {}
        client = httpx.Client(base_url=self.url, headers=headers, timeout=30)
        self.clients.append(client)
        return client

    def submit(self, client: httpx.Client | None = None, **spec: Any) -> dict[str, Any]:
        response = (client or self.client()).post("/api/jobs", json={"spec": {**TINY_SPEC, **spec}})
        assert response.status_code == 201, response.text
        return response.json()

    def metric_series(self, job_id: str) -> dict[str, dict[str, list[Any]]]:
        """Every stored point of the job, per key: {"steps": [...], "values": [...]}."""
        response = self.client().get(f"/api/jobs/{job_id}/metrics", params={"max_points": 0})
        assert response.status_code == 200, response.text
        return response.json()["series"]

    def wait_for(
        self,
        job_id: str,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float = 60,
        what: str = "condition",
        token: str | None = None,
    ) -> dict[str, Any]:
        client = self.client(token)
        deadline = time.monotonic() + timeout
        while True:
            job = client.get(f"/api/jobs/{job_id}").json()
            if predicate(job):
                return job
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out waiting for {what}; job: {job}\n"
                    f"--- worker log ---\n{self.worker.log()[-4000:]}"
                )
            time.sleep(0.1)

    def wait_finished(self, job_id: str, timeout: float = 60, token: str | None = None) -> dict[str, Any]:
        return self.wait_for(
            job_id,
            lambda j: j["status"] in ("succeeded", "failed", "cancelled"),
            timeout,
            "the job to finish",
            token,
        )

    def cancel_jobs_created_since(self, moment: datetime) -> None:
        """Cancel both users' queued and running jobs created at or after `moment`."""
        for token in (self.token, self.other_token):
            client = self.client(token)
            active = client.get("/api/jobs", params={"status": "queued,running", "limit": 500})
            for job in active.json()["items"]:
                if datetime.fromisoformat(job["created_at"]) >= moment:
                    client.post(f"/api/jobs/{job['id']}/cancel")

    def wait_replay(
        self, replay_id: str, timeout: float = 120, statuses: tuple[str, ...] = ("ready", "failed")
    ) -> dict[str, Any]:
        """The replay once its status is one of `statuses` (with its data when ready)."""
        client = self.client()
        deadline = time.monotonic() + timeout
        while True:
            replay = client.get(f"/api/replays/{replay_id}").json()
            if replay["status"] in statuses:
                return replay
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out waiting for replay {replay_id} to be {' or '.join(statuses)}: {replay}\n"
                    f"--- worker log ---\n{self.worker.log()[-4000:]}"
                )
            time.sleep(0.2)


def _create_pg_database() -> tuple[str, Callable[[], None]]:
    import psycopg

    name = f"rlserve_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")

    def drop() -> None:
        from app.db import get_engine

        url = f"{base}/{name}"
        get_engine(url).dispose()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return f"{base}/{name}", drop


def _drop_redis_queues(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"*{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@contextlib.contextmanager
def backend_settings(backend: str, data_dir: Path, **overrides: Any) -> Iterator[Settings]:
    """Settings for `backend` (and `overrides`) on a migrated database; its database and
    queues go afterwards."""
    from app.db import upgrade

    cleanups: list[Callable[[], None]] = []
    prefix = f"t{uuid.uuid4().hex[:8]}-"
    common = {
        "data_dir": data_dir,
        "queue_prefix": prefix,
        "heartbeat_interval": HEARTBEAT_INTERVAL,
        "heartbeat_timeout": HEARTBEAT_TIMEOUT,
        **overrides,
    }
    if backend == "embedded":
        settings = Settings(**common)  # type: ignore[arg-type]
    else:
        database_url, drop = _create_pg_database()
        cleanups.append(drop)
        cleanups.append(lambda: _drop_redis_queues(prefix))
        settings = Settings(database_url=database_url, broker_url=REDIS_URL, **common)  # type: ignore[arg-type]
    try:
        upgrade(settings.database_url)
        yield settings
    finally:
        for cleanup in reversed(cleanups):
            with contextlib.suppress(Exception):
                cleanup()


def user_tokens(settings: Settings) -> tuple[str, str]:
    """Tokens of two users, alice and bob."""
    from app.db import session_scope
    from app.tokens import create_token

    with session_scope(settings.database_url) as session:
        return create_token(session, "alice", "tests"), create_token(session, "bob", "tests")


def start_job(settings: Settings, job_id: str, points: Sequence[tuple[int, dict[str, float]]] = ()) -> None:
    """Move a queued job to running with these points, as a worker's claim and sink do."""
    from app.db import session_scope
    from app.job_states import record_status
    from app.models import Job, JobStatus
    from worker.attempt import insert_points

    with session_scope(settings.database_url) as session:
        job = session.get(Job, job_id)
        assert job is not None
        record_status(session, job, JobStatus.running, "test attempt")
        insert_points(session, job_id, list(points), job.user_id)
        job.last_step = max((s for s, _ in points), default=0)


def finish_job(settings: Settings, job_id: str, points: list[tuple[int, dict[str, float]]]) -> None:
    """Store a job's points and finish it (succeeded), as the worker's sink and runner do."""
    from app.db import session_scope
    from app.job_states import record_status
    from app.models import Job, JobStatus

    start_job(settings, job_id, points)
    with session_scope(settings.database_url) as session:
        job = session.get(Job, job_id)
        assert job is not None
        record_status(session, job, JobStatus.succeeded, "trained")


@contextlib.contextmanager
def running_stack(backend: str, data_dir: Path, **overrides: Any) -> Iterator[Stack]:
    """Start a stack for `backend` (Settings `overrides` apply to the API and the worker);
    stop it and remove its database and queues afterwards."""
    from app.main import create_app

    with backend_settings(backend, data_dir, **overrides) as settings:
        token, other = user_tokens(settings)
        app = create_app(settings)
        server = ThreadedServer(app)
        worker = WorkerProcess(settings, data_dir / "worker.log")
        stack = Stack(backend, settings, server.url, token, other, app, worker)
        try:
            server.start()
            worker.start()
            yield stack
        finally:
            for client in stack.clients:
                client.close()
            worker.stop()
            server.stop()


@pytest.fixture(scope="session", params=["embedded", "postgres"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """API + real worker on one backend; every app/worker test runs on both."""
    with running_stack(request.param, tmp_path_factory.mktemp(f"rlserve-{request.param}")) as running:
        yield running
        errors = list(running.server_errors)
    assert not errors, f"the API answered 5xx: {errors}"


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole service (uvicorn + a real worker), embedded, on a free port: `.url`, `.token`."""
    with running_stack("embedded", tmp_path_factory.mktemp("rlserve-live")) as running:
        yield running


_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    report = yield
    if report.failed:
        item.stash[_FAILED] = True
    return report


@pytest.fixture(autouse=True)
def _failed_tests_leave_no_job_running(request: pytest.FixtureRequest) -> Iterator[None]:
    """When a test fails, cancel the jobs it started: a long job that the test would have
    cancelled at its end would otherwise keep the worker from the tests after it."""
    started = datetime.now(UTC)
    yield
    if not request.node.stash.get(_FAILED, False):
        return
    for name in ("stack", "live_server"):
        if name in request.fixturenames:
            request.getfixturevalue(name).cancel_jobs_created_since(started)
