"""Service settings, read from environment variables.

The same code runs embedded (SQLite + a broker that needs no server, all in one data
folder) and in production (PostgreSQL + Redis); only these settings differ.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from rlcore.memory import memory_limit

DEFAULT_DATA_DIR = "./rlserve-data"
METRICS_MODES = ("off", "token", "open")


def _default_data_dir() -> Path:
    return Path(os.environ.get("RLSERVE_DATA_DIR", DEFAULT_DATA_DIR)).expanduser().resolve()


@dataclass(frozen=True)
class Settings:
    """Everything the API and the worker need to find each other.

    - `database_url`: `DATABASE_URL`; default a SQLite file in the data folder.
    - `broker_url`: `CELERY_BROKER_URL`; default kombu's filesystem transport in the data folder.
    - `data_dir`: `RLSERVE_DATA_DIR`; policies, checkpoints, the SQLite file and the embedded broker.
    - `queue_prefix`: `RLSERVE_QUEUE_PREFIX`; lets several deployments (or test runs) share a broker.
    - `auto_queue`: `RLSERVE_AUTO_QUEUE` (`cpu` or `gpu`): where jobs with `device: auto` go.
      Default `cpu`, since a job sent to `gpu` waits forever where no GPU worker runs; set it
      to `gpu` when the deployment has GPU workers.
    - `heartbeat_interval` / `heartbeat_timeout`: a running job's worker writes a heartbeat
      every interval; a job whose heartbeat is older than the timeout is re-queued by the reaper.
    - `max_attempts`: a job whose worker died this many times is failed, not re-queued again.
    - `metrics`: `RLSERVE_METRICS`, who may read the Prometheus `/metrics`: `off` (default; 404),
      `token` (a token made with `rlserve token create NAME --scope metrics`), or `open` (anyone:
      only for a scraper on a private network).
    - `metrics_port` / `metrics_addr`: `RLSERVE_METRICS_PORT` / `RLSERVE_METRICS_ADDR` (default
      127.0.0.1): with `open`, serve `/metrics` on this port of its own instead of the API's,
      so the API's port never shows it.
    - `max_job_memory`: `RLSERVE_MAX_JOB_MEMORY` (bytes, or `4GiB`, `512MiB`, `8GB`; default
      4 GiB): a spec whose estimated memory (`rlcore.memory`) is larger is refused with 422,
      since an out-of-memory kill would look like a lost worker and be re-queued. rlcore reads
      the variable itself whenever it validates a spec, so the API, the worker and
      `rlserve train` all apply the value in their own environment; set it for all of them.
    - `max_body_bytes`: `RLSERVE_MAX_BODY_BYTES`; a request body over this many bytes gets 413
      before it is parsed. Default 1 MiB: a spec is a few hundred bytes.

    Fair use of a shared service (per user; exceeding one answers 429 or 422):

    - `max_active_jobs`: `RLSERVE_MAX_ACTIVE_JOBS`, queued + running jobs (20).
    - `max_group_size`: `RLSERVE_MAX_GROUP_SIZE`, jobs one `POST /api/groups` makes (20).
    - `max_study_size`: `RLSERVE_MAX_STUDY_SIZE`, jobs one `POST /api/studies` makes (1000); a
      study must also fit within `max_active_jobs`, since all its jobs are queued at once.
    - `max_total_steps`: `RLSERVE_MAX_TOTAL_STEPS`, a job's `total_steps` (20,000,000).
    - `max_points_per_job`: `RLSERVE_MAX_POINTS_PER_JOB`, metric points stored per job
      (100,000); a longer job's points are written at a cadence that keeps it under.
    - `max_streams_per_user`: `RLSERVE_MAX_STREAMS_PER_USER`, open SSE streams per API process (10).
    - `max_queued_replays`: `RLSERVE_MAX_QUEUED_REPLAYS`, a user's replays and probes queued or
      running at once (5).
    """

    data_dir: Path = field(default_factory=_default_data_dir)
    database_url: str = ""
    broker_url: str = ""
    queue_prefix: str = ""
    auto_queue: str = "cpu"
    heartbeat_interval: float = 2.0
    heartbeat_timeout: float = 30.0
    max_attempts: int = 3
    max_body_bytes: int = 1024 * 1024
    # Redis redelivers an unacked task after this many seconds (celery#5935); keep it far
    # above the longest job: lost workers are found by heartbeats and the reaper instead.
    visibility_timeout: int = 7 * 24 * 3600
    metrics: str = "off"
    metrics_port: int | None = None
    metrics_addr: str = "127.0.0.1"
    max_active_jobs: int = 20
    max_group_size: int = 20
    max_study_size: int = 1000
    max_total_steps: int = 20_000_000
    max_points_per_job: int = 100_000
    max_streams_per_user: int = 10
    max_queued_replays: int = 5

    def __post_init__(self) -> None:
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{self.data_dir / 'rlserve.db'}")
        if not self.broker_url:
            object.__setattr__(self, "broker_url", "filesystem://")
        if self.auto_queue not in ("cpu", "gpu"):
            raise ValueError(f"RLSERVE_AUTO_QUEUE must be cpu or gpu, not {self.auto_queue!r}")
        if self.metrics not in METRICS_MODES:
            raise ValueError(f"RLSERVE_METRICS must be off, token or open, not {self.metrics!r}")
        if self.metrics_port is not None and self.metrics != "open":
            # The separate port has no authentication of its own.
            raise ValueError("RLSERVE_METRICS_PORT needs RLSERVE_METRICS=open")
        memory_limit()  # a bad RLSERVE_MAX_JOB_MEMORY stops the service at start, not each request
        if self.max_body_bytes < 1:
            raise ValueError(f"RLSERVE_MAX_BODY_BYTES must be a positive integer, not {self.max_body_bytes}")
        if self.max_points_per_job < 10:
            raise ValueError("RLSERVE_MAX_POINTS_PER_JOB must be at least 10")

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from the environment; keyword arguments win."""
        env = os.environ
        values: dict[str, object] = {
            "data_dir": _default_data_dir(),
            "database_url": env.get("DATABASE_URL", ""),
            "broker_url": env.get("CELERY_BROKER_URL", ""),
            "queue_prefix": env.get("RLSERVE_QUEUE_PREFIX", ""),
            "auto_queue": env.get("RLSERVE_AUTO_QUEUE", "cpu"),
            "heartbeat_interval": float(env.get("RLSERVE_HEARTBEAT_INTERVAL", "2")),
            "heartbeat_timeout": float(env.get("RLSERVE_HEARTBEAT_TIMEOUT", "30")),
            "max_attempts": int(env.get("RLSERVE_MAX_ATTEMPTS", "3")),
            "metrics": env.get("RLSERVE_METRICS", "off"),
            "metrics_port": int(env["RLSERVE_METRICS_PORT"]) if env.get("RLSERVE_METRICS_PORT") else None,
            "metrics_addr": env.get("RLSERVE_METRICS_ADDR", "127.0.0.1"),
            "max_body_bytes": int(env.get("RLSERVE_MAX_BODY_BYTES", str(1024 * 1024))),
            "max_active_jobs": int(env.get("RLSERVE_MAX_ACTIVE_JOBS", "20")),
            "max_group_size": int(env.get("RLSERVE_MAX_GROUP_SIZE", "20")),
            "max_study_size": int(env.get("RLSERVE_MAX_STUDY_SIZE", "1000")),
            "max_total_steps": int(env.get("RLSERVE_MAX_TOTAL_STEPS", "20000000")),
            "max_points_per_job": int(env.get("RLSERVE_MAX_POINTS_PER_JOB", "100000")),
            "max_streams_per_user": int(env.get("RLSERVE_MAX_STREAMS_PER_USER", "10")),
            "max_queued_replays": int(env.get("RLSERVE_MAX_QUEUED_REPLAYS", "5")),
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    def with_data_dir(self, data_dir: Path) -> Settings:
        """A copy rooted at another data folder (defaults re-derived from it)."""
        return replace(self, data_dir=data_dir.resolve(), database_url="", broker_url="")

    @property
    def max_job_memory(self) -> int:
        """Bytes a job's spec may need (`RLSERVE_MAX_JOB_MEMORY`, read now; default 4 GiB)."""
        return memory_limit()

    @property
    def is_embedded_broker(self) -> bool:
        return self.broker_url.startswith("filesystem://")

    @property
    def broker_dir(self) -> Path:
        """Folder of the embedded filesystem broker's messages."""
        return self.data_dir / "broker"

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"

    def job_dir(self, job_id: str) -> Path:
        """A job's run folder. `job_id` comes from the database, never from a request."""
        if not job_id.isalnum():  # defence in depth: ids are uuid hex
            raise ValueError(f"bad job id {job_id!r}")
        return self.jobs_dir / job_id

    def queue_name(self, kind: str) -> str:
        """Broker queue name for `cpu` or `gpu`."""
        return f"{self.queue_prefix}{kind}"
