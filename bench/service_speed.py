"""How fast is the service? On demand, not a test: `python bench/service_speed.py [--quick]`.

Starts the API (uvicorn) and one real Celery worker as subprocesses on 127.0.0.1, per
backend (`embedded`: SQLite + kombu's filesystem broker; `postgres`: a fresh PostgreSQL
database `rlserve_bench_<hex>` + Redis with a queue prefix of its own), and measures:

- requests/s and p50/p99 latency of `GET /api/jobs/{id}` and `GET /api/jobs/{id}/metrics`
  (default downsampling, and `max_points=0` on a job with 10k points), a few clients;
- the sink's cost: the same spec trained by `rlcore.trainer.train` in this process vs
  through the worker (env steps/s, best of N), and metric points/s the worker wrote;
- time from a point written to its arrival at an SSE client of `/api/jobs/{id}/events`;
- (embedded) 20 SSE clients following one running job: every point, p99 latency;
- `load`: 20 clients on `GET /api/jobs/{id}` and the downsampled metrics route while a
  job trains (p99 target 250 ms).

The API runs as in production (docker-compose.yml): uvicorn with `--workers 2`.

Every loop is bounded (a deadline and a request cap); nothing listens beyond loopback.
Prints a table and writes bench/results/service_speed.json. Everything it created (data
folder, database, Redis keys) is removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import ListSink  # noqa: E402

from app.settings import Settings  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "service_speed.json"
PG_ADMIN_URL = os.environ.get("RLSERVE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("RLSERVE_BENCH_REDIS", "redis://127.0.0.1:6379/13")
SSE_TARGET_MS = 500.0
LOAD_TARGET_MS = 250.0
LOAD_CLIENTS = 20
SINK_TARGET = 0.05

# Small updates (64 env steps each, ~250 points/s on one core) so the sink has work to do.
# checkpoint_interval 0: one checkpoint at the end in both runs, so the comparison is the
# sink alone, not checkpoint I/O (which both runs would pay the same).
SPEC: dict[str, Any] = {
    "algo": "reinforce",
    "model": "mlp",
    "env_id": "CartPole-v1",
    "num_envs": 4,
    "rollout_length": 16,
    "checkpoint_interval": 0,
    "device": "cpu",
}
METRIC_KEYS = [
    "charts/episodic_return",
    "charts/episodic_length",
    "charts/episodes",
    "charts/learning_rate",
    "losses/policy_loss",
    "losses/entropy",
    "losses/replay_error",
    "perf/sps",
    "perf/wall_time",
]


@dataclass
class Row:
    """One line of the table."""

    backend: str
    measure: str
    value: str
    p50_ms: float | None = None
    p99_ms: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""


@dataclass
class Config:
    quick: bool
    clients: int
    http_seconds: float
    total_steps: int
    repeats: int
    sse_clients: int
    parts: set[str]


# -- the stack -------------------------------------------------------------------------


@dataclass
class Stack:
    backend: str
    settings: Settings
    url: str
    token: str
    user_id: int
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "RLSERVE_DATA_DIR": str(settings.data_dir),
        "DATABASE_URL": settings.database_url,
        "CELERY_BROKER_URL": settings.broker_url,
        "RLSERVE_QUEUE_PREFIX": settings.queue_prefix,
        "RLSERVE_FRONTEND_DIR": str(settings.data_dir / "no-frontend"),
        "RLSERVE_MAX_STREAMS_PER_USER": "100",  # the fan-out part opens 20 streams as one user
        "PYTHONPATH": str(ROOT),
    }


def _spawn(argv: list[str], settings: Settings, log_name: str) -> subprocess.Popen[bytes]:
    with (settings.data_dir / log_name).open("ab") as log:
        return subprocess.Popen(
            argv, env=_env(settings), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the API exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError("the API did not become healthy")


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    import psycopg

    from app.db import get_engine

    name = f"rlserve_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    try:
        yield url
    finally:
        get_engine(url).dispose()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def drop_redis_keys(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"*{prefix}*"))
    keys += list(client.scan_iter("_kombu.binding_deadlines"))  # kombu's, in the bench's own db
    if keys:
        client.delete(*keys)
    client.close()


def production_api_argv(port: int) -> list[str]:
    """docker-compose.yml's API command on 127.0.0.1:`port`."""
    import yaml

    command = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["api"]["command"]
    argv = [sys.executable, "-m", *command, "--log-level", "warning"]
    argv[argv.index("--host") + 1] = "127.0.0.1"
    argv[argv.index("--port") + 1] = str(port)
    return argv


@contextlib.contextmanager
def running_stack(backend: str) -> Iterator[Stack]:
    """uvicorn + one Celery worker (both subprocesses) on `backend`; everything removed afterwards."""
    from sqlalchemy import select

    from app.auth import create_token
    from app.cli import worker_argv
    from app.db import session_scope, upgrade
    from app.models import User

    prefix = f"bench{uuid.uuid4().hex[:8]}-"
    with contextlib.ExitStack() as cleanup, tempfile.TemporaryDirectory(prefix="rlserve-bench-") as tmp:
        data_dir = Path(tmp)
        if backend == "embedded":
            settings = Settings(data_dir=data_dir, queue_prefix=prefix)
        else:
            database_url = cleanup.enter_context(pg_database())
            cleanup.callback(drop_redis_keys, prefix)
            settings = Settings(
                data_dir=data_dir, queue_prefix=prefix, database_url=database_url, broker_url=REDIS_URL
            )
        upgrade(settings.database_url)
        with session_scope(settings.database_url) as session:
            token = create_token(session, "bench", "bench")
            user_id = session.scalar(select(User.id).where(User.name == "bench"))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        stack = Stack(backend, settings, url, token, int(user_id or 0))
        api_argv = production_api_argv(port)
        celery_argv = [sys.executable, "-m", "celery", "-A", "worker.celery_app"]
        celery_argv += worker_argv(settings, "cpu,gpu", 1, "warning")
        try:
            stack.procs.append(_spawn(api_argv, settings, "api.log"))
            stack.procs.append(_spawn(celery_argv, settings, "worker.log"))
            _wait_healthy(url, stack.procs[0])
            yield stack
        finally:
            for proc in reversed(stack.procs):
                _stop(proc)


# -- jobs ------------------------------------------------------------------------------


def submit(stack: Stack, total_steps: int) -> str:
    with stack.client() as client:
        response = client.post("/api/jobs", json={"spec": {**SPEC, "total_steps": total_steps}})
    response.raise_for_status()
    return response.json()["id"]


def wait_finished(stack: Stack, job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with stack.client() as client:
        while time.monotonic() < deadline:
            job = client.get(f"/api/jobs/{job_id}").json()
            if job["status"] in ("succeeded", "failed", "cancelled"):
                return job
            time.sleep(0.3)
    raise TimeoutError(f"job {job_id} did not finish in {timeout:.0f} s")


@dataclass
class StoredPoint:
    step: int
    inserted_at: float  # epoch seconds: the worker's utcnow() when it built the INSERT
    wall_time: float  # the trainer's perf/wall_time (seconds since its Run started)


def stored_points(stack: Stack, job_id: str) -> list[StoredPoint]:
    from sqlalchemy import select

    from app.db import session_scope
    from app.models import MetricPoint, as_utc

    with session_scope(stack.settings.database_url) as session:
        rows = session.execute(
            select(MetricPoint.step, MetricPoint.created_at, MetricPoint.values)
            .where(MetricPoint.job_id == job_id)
            .order_by(MetricPoint.step)
        ).all()
    return [StoredPoint(s, as_utc(at).timestamp(), float(v["perf/wall_time"])) for s, at, v in rows]


def seed_big_job(stack: Stack, n_points: int) -> str:
    """A finished job with `n_points` metric points, written straight to the database."""
    from app.db import session_scope
    from app.job_states import record_status
    from app.models import Job, JobStatus
    from rlcore.spec import TrainSpec
    from worker.attempt import insert_points

    spec = TrainSpec.model_validate({**SPEC, "total_steps": n_points * 64})
    with session_scope(stack.settings.database_url) as session:
        job = Job(user_id=stack.user_id, spec=spec.model_dump(mode="json"), status=JobStatus.queued)
        session.add(job)
        session.flush()
        for status in (JobStatus.queued, JobStatus.running, JobStatus.succeeded):
            record_status(session, job, status, "seeded by the benchmark")
        points = [(64 * (i + 1), _fake_metrics(i)) for i in range(n_points)]
        for start in range(0, n_points, 1000):
            insert_points(session, job.id, points[start : start + 1000])
        job.last_step, job.latest_metrics, job.points_written = points[-1][0], points[-1][1], n_points
        return job.id


def _fake_metrics(i: int) -> dict[str, float]:
    wave = math.sin(i / 50.0)
    return {key: float(i) * 0.01 + wave * (k + 1) for k, key in enumerate(METRIC_KEYS)}


# -- HTTP load -------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]


def load(stack: Stack, path: str, clients: int, seconds: float, cap: int = 100_000) -> Row:
    """`clients` threads GET `path` back to back until `seconds` pass (or `cap` requests)."""
    latencies: list[float] = []
    errors: list[int] = []
    lock = threading.Lock()
    with stack.client() as warm:  # warm the API's caches and connection pools
        sizes = [len(warm.get(path).content) for _ in range(3)]
    deadline = time.perf_counter() + seconds

    def one_client() -> None:
        mine, bad = [], []
        with stack.client() as client:
            while time.perf_counter() < deadline and len(mine) < cap // clients:
                t0 = time.perf_counter()
                status = client.get(path).status_code
                mine.append(time.perf_counter() - t0)
                if status != 200:
                    bad.append(status)
        with lock:
            latencies.extend(mine)
            errors.extend(bad)

    started = time.perf_counter()
    threads = [threading.Thread(target=one_client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    note = f"{clients} clients, {len(latencies)} req, {sizes[-1] / 1024:.0f} KiB"
    if errors:
        note += f", {len(errors)} non-200 ({sorted(set(errors))})"
    return Row(
        stack.backend,
        f"GET {path.replace(stack.url, '')}",
        f"{len(latencies) / elapsed:.0f} req/s",
        _ms(pct(latencies, 50)),
        _ms(pct(latencies, 99)),
        note=note,
    )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def bench_http(stack: Stack, cfg: Config) -> list[Row]:
    big = seed_big_job(stack, 10_000)
    ran = submit(stack, 5_000)  # a real (short) job, for a realistic history and artifacts
    wait_finished(stack, ran)
    paths = [
        f"/api/jobs/{ran}",
        f"/api/jobs/{big}/metrics",
        f"/api/jobs/{big}/metrics?max_points=0",
    ]
    rows = [load(stack, path, cfg.clients, cfg.http_seconds) for path in paths]
    rows[0].measure = "GET /api/jobs/{id}"
    rows[1].measure = "GET .../metrics (10k pts, default 1000)"
    rows[2].measure = "GET .../metrics?max_points=0 (10k pts)"
    return rows


def bench_load(stack: Stack, cfg: Config) -> list[Row]:
    """20 clients on one job and on its downsampled metrics while another job trains."""
    big = seed_big_job(stack, 10_000)
    training = submit(stack, 5_000_000)  # trains through the measurement, then is cancelled
    with stack.client() as client:
        deadline = time.monotonic() + 60
        while client.get(f"/api/jobs/{training}").json()["status"] != "running":
            if time.monotonic() > deadline:
                raise TimeoutError("the training job did not start")
            time.sleep(0.2)
        try:
            rows = [
                load(stack, f"/api/jobs/{training}", LOAD_CLIENTS, cfg.http_seconds),
                load(stack, f"/api/jobs/{big}/metrics", LOAD_CLIENTS, cfg.http_seconds),
            ]
        finally:
            client.post(f"/api/jobs/{training}/cancel")
    rows[0].measure = f"{LOAD_CLIENTS} clients: GET /api/jobs/{{id}} (a job training)"
    rows[1].measure = f"{LOAD_CLIENTS} clients: GET .../metrics (10k pts, default 1000)"
    for row in rows:
        row.target = f"p99 < {LOAD_TARGET_MS:.0f} ms"
        row.met = row.p99_ms is not None and row.p99_ms < LOAD_TARGET_MS and "non-200" not in row.note
    wait_finished(stack, training)
    return rows


# -- the sink's cost -------------------------------------------------------------------


def direct_sps(total_steps: int) -> float:
    """Env steps/s of `rlcore.trainer.train` in this process, no database."""
    from rlcore.spec import TrainSpec
    from rlcore.trainer import train

    sink = ListSink()
    with tempfile.TemporaryDirectory(prefix="rlserve-bench-direct-") as out:
        train(TrainSpec.model_validate({**SPEC, "total_steps": total_steps}), Path(out), sink=sink)
    step, metrics = sink.points[-1]
    return step / metrics["perf/wall_time"]


def worker_run(stack: Stack, total_steps: int) -> tuple[float, float, str]:
    """(env steps/s, points/s written, final status) of the spec trained by the worker.

    Both rates use the trainer's own clock (perf/wall_time of the last point), as
    `direct_sps` does, so worker start-up and task pick-up are not counted.
    """
    job_id = submit(stack, total_steps)
    job = wait_finished(stack, job_id)
    points = stored_points(stack, job_id)
    last = points[-1]
    return last.step / last.wall_time, len(points) / last.wall_time, job["status"]


def bench_sink(stack: Stack, cfg: Config) -> list[Row]:
    direct, worker, rates, statuses = [], [], [], []
    for _ in range(cfg.repeats):  # interleaved, so drift in machine load hits both
        direct.append(direct_sps(cfg.total_steps))
        sps, rate, status = worker_run(stack, cfg.total_steps)
        worker.append(sps)
        rates.append(rate)
        statuses.append(status)
    overhead = 1 - max(worker) / max(direct)
    status_note = "" if set(statuses) == {"succeeded"} else f"; job status {sorted(set(statuses))}!"
    return [
        Row(
            stack.backend,
            f"sink overhead (steps/s, best of {cfg.repeats})",
            f"{overhead:+.1%}",
            target=f"< {SINK_TARGET:.0%}",
            met=overhead < SINK_TARGET,
            note=f"direct {max(direct):,.0f} vs worker {max(worker):,.0f} steps/s{status_note}",
        ),
        Row(
            stack.backend,
            "points/s written by one worker",
            f"{max(rates):.0f} pts/s",
            note=f"{SPEC['num_envs'] * SPEC['rollout_length']} env steps per point",
        ),
        insert_capacity(stack),
    ]


def insert_capacity(stack: Stack, batches: int = 40, batch: int = 64) -> Row:
    """How many points/s the worker's insert path (insert_points, one transaction per batch) takes."""
    from app.db import session_scope
    from worker.attempt import insert_points

    job_id = seed_big_job(stack, 1)
    started = time.perf_counter()
    for b in range(batches):
        points = [(10_000 + (b * batch + i) * 64, _fake_metrics(i)) for i in range(batch)]
        with session_scope(stack.settings.database_url) as session:
            insert_points(session, job_id, points)
    rate = batches * batch / (time.perf_counter() - started)
    return Row(stack.backend, "sink insert capacity", f"{rate:,.0f} pts/s", note=f"batches of {batch}")


# -- the event stream ------------------------------------------------------------------


@dataclass
class SseClient:
    """Follows one job's SSE stream in a thread; records when each step arrived."""

    stack: Stack
    job_id: str
    timeout: float
    connected_at: float = 0.0
    arrivals: dict[int, float] = field(default_factory=dict)
    ended: bool = False
    error: str = ""

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        return thread

    def _run(self) -> None:
        deadline = time.monotonic() + self.timeout
        try:
            with self.stack.client() as client, client.stream("GET", f"/api/jobs/{self.job_id}/events") as r:
                event = ""
                for line in r.iter_lines():
                    if not self.connected_at:
                        self.connected_at = time.time()
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:") and event == "metrics":
                        now = time.time()  # before parsing: parse time is the client's, not the service's
                        for point in json.loads(line[5:])["points"]:
                            self.arrivals.setdefault(point["step"], now)
                    elif line.startswith("data:") and event == "end":
                        self.ended = True
                        return
                    if time.monotonic() > deadline:
                        self.error = "timed out"
                        return
        except Exception as error:  # reported in the table, not raised
            self.error = f"{type(error).__name__}: {error}"


def follow(stack: Stack, n_clients: int, total_steps: int) -> tuple[list[SseClient], list[StoredPoint], str]:
    """Submit a job, follow it with `n_clients` SSE clients until it ends."""
    job_id = submit(stack, total_steps)
    clients = [SseClient(stack, job_id, timeout=180) for _ in range(n_clients)]
    threads = [c.start() for c in clients]
    for t in threads:
        t.join(200)
    job = wait_finished(stack, job_id)
    return clients, stored_points(stack, job_id), job["status"]


def latencies(clients: list[SseClient], points: list[StoredPoint]) -> tuple[list[float], list[float]]:
    """Per (client, point): seconds from insert to arrival, and from trainer log to arrival.

    How points are timestamped (one machine, so one wall clock for every process):
    - insert: `created_at`, the worker's `utcnow()` as it builds the INSERT (just before commit);
    - trainer log: the trainer's `perf/wall_time` counts from an unknown start T0; every point
      satisfies log time = T0 + wall_time <= inserted_at, so T0 ~= min(inserted_at - wall_time).
      The minimum is nearly exact: the last point is written synchronously as it is logged.
      This latency adds the sink's batching (up to its 0.25 s flush interval).
    - arrival: the client's `time.time()` when the `data:` line of the metrics event is read.
    Points stored before a client connected (a backlog, not a live point) are left out.
    """
    t0 = min(p.inserted_at - p.wall_time for p in points)
    from_insert, from_log = [], []
    for client in clients:
        for p in points:
            arrived = client.arrivals.get(p.step)
            if arrived is not None and p.inserted_at >= client.connected_at:
                from_insert.append(arrived - p.inserted_at)
                from_log.append(arrived - (t0 + p.wall_time))
    return from_insert, from_log


def bench_sse(stack: Stack, n_clients: int, total_steps: int) -> list[Row]:
    clients, points, status = follow(stack, n_clients, total_steps)
    sps = points[-1].step / points[-1].wall_time
    steps = {p.step for p in points}
    complete = sum(1 for c in clients if steps <= c.arrivals.keys() and c.ended)
    from_insert, from_log = latencies(clients, points)
    problems = sorted({c.error for c in clients if c.error})
    tail = f"; job {status}" if status != "succeeded" else ""
    tail += f"; errors: {problems}" if problems else ""
    tail = f", job {sps:,.0f} steps/s{tail}"
    label = f"{n_clients} SSE clients" if n_clients > 1 else "SSE"
    every = complete == n_clients
    rows = []
    for name, values in (("insert", from_insert), ("trainer log", from_log)):
        p99 = _ms(pct(values, 99))
        rows.append(
            Row(
                stack.backend,
                f"{label}: {name} -> client",
                f"{len(values)} arrivals",
                _ms(pct(values, 50)),
                p99,
                target=f"p99 < {SSE_TARGET_MS:.0f} ms" + (", all points" if n_clients > 1 else ""),
                met=p99 is not None and p99 < SSE_TARGET_MS and every,
                note=f"{complete}/{n_clients} clients got all {len(points)} points{tail}",
            )
        )
    return rows


# -- the table -------------------------------------------------------------------------


def print_table(rows: list[Row]) -> None:
    def fmt(v: float | None) -> str:
        return "" if v is None else f"{v:.1f}"

    header = ["backend", "measure", "value", "p50 ms", "p99 ms", "target", "verdict", "note"]
    cells = [
        [
            r.backend,
            r.measure,
            r.value,
            fmt(r.p50_ms),
            fmt(r.p99_ms),
            r.target or "-",
            "" if r.met is None else ("met" if r.met else "NOT MET"),
            r.note,
        ]
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *cells, strict=True)]
    for i, line in enumerate([header, *cells]):
        print("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


# -- main ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> tuple[list[str], Config]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", default="embedded,postgres", help="comma-separated: embedded, postgres")
    parser.add_argument("--quick", action="store_true", help="shorter runs (about a minute in all)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients")
    parser.add_argument("--sse-clients", type=int, default=20, help="clients on one job (embedded)")
    parser.add_argument("--only", default="http,load,sink,sse,fanout", help="comma-separated parts to run")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - {"embedded", "postgres"}
    if unknown:
        parser.error(f"unknown backend(s) {sorted(unknown)}")
    cfg = Config(
        quick=args.quick,
        clients=args.clients,
        http_seconds=2.0 if args.quick else 5.0,
        total_steps=40_000 if args.quick else 120_000,
        repeats=1 if args.quick else 3,
        sse_clients=args.sse_clients,
        parts={p.strip() for p in args.only.split(",") if p.strip()},
    )
    return backends, cfg


def run_backend(backend: str, cfg: Config) -> list[Row]:
    parts = cfg.parts
    rows: list[Row] = []
    with running_stack(backend) as stack:
        if "http" in parts:
            rows += bench_http(stack, cfg)
        if "load" in parts:
            rows += bench_load(stack, cfg)
        if "sink" in parts:
            rows += bench_sink(stack, cfg)
        if "sse" in parts:
            rows += bench_sse(stack, 1, cfg.total_steps)
        if "fanout" in parts and backend == "embedded":
            rows += bench_sse(stack, cfg.sse_clients, cfg.total_steps)
    return rows


def main(argv: list[str] | None = None) -> int:
    backends, cfg = parse_args(argv)
    load_before = os.getloadavg()[0]
    if load_before > 0.5:
        print(
            f"[bench] load average {load_before:.1f}: other work is running; noisy timings", file=sys.stderr
        )
    started = time.monotonic()
    rows: list[Row] = []
    for backend in backends:
        print(f"[bench] {backend} ...", file=sys.stderr, flush=True)
        rows += run_backend(backend, cfg)
    seconds = time.monotonic() - started
    print_table(rows)
    machine = platform.processor() or platform.machine()
    where = f"{os.cpu_count()} CPUs ({machine}), load {load_before:.1f} before"
    print(f"\n{len(rows)} rows in {seconds:.0f} s on {where}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(seconds, 1),
        "cpus": os.cpu_count(),
        "load_average_before": round(load_before, 2),
    }
    config = {**asdict(cfg), "parts": sorted(cfg.parts), "backends": backends}
    RESULTS.write_text(json.dumps({**meta, "config": config, "rows": [asdict(r) for r in rows]}, indent=2))
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0 if all(r.met is not False for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
