"""SQLAlchemy 2.0 models: users and tokens, groups, studies, jobs, status events, metric points,
artifacts, replays."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time stored here is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def new_id() -> str:
    """Job and group ids: random, so they cannot be guessed, and safe as folder names."""
    return uuid.uuid4().hex


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


FINISHED = (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: DateTime(timezone=True), dict[str, Any]: JSON}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TokenScope(StrEnum):
    """What a token opens: the API (a user's jobs), or only `/metrics` (a Prometheus scraper)."""

    api = "api"
    metrics = "metrics"


class Token(Base):
    """An API token; only its sha256 is stored, the token itself is shown once."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(16), default=TokenScope.api, server_default=TokenScope.api)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class Group(Base):
    """Jobs made from one spec over several seeds and model variants, to compare."""

    __tablename__ = "groups"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    seeds: Mapped[list[int]] = mapped_column(JSON)
    models: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Study(Base):
    """A sweep: one base spec over axes of any spec fields (a grid or random cells), times seeds."""

    __tablename__ = "studies"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    # The base spec as the user wrote it (not filled with defaults: a cell's algo or env
    # picks its own defaults), and the axes as given: [{"field", "values" | "range"}].
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    axes: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    seeds: Mapped[list[int]] = mapped_column(JSON)
    search: Mapped[str] = mapped_column(String(16))  # grid | random
    samples: Mapped[int | None] = mapped_column(Integer, default=None)
    study_seed: Mapped[int | None] = mapped_column(BigInteger, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    cells: Mapped[list[StudyCell]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="StudyCell.number"
    )

    @property
    def fields(self) -> list[str]:
        """The axes' field names, in the study's order."""
        return [axis["field"] for axis in self.axes]


class StudyCell(Base):
    """One point of a study's axes (`values`: field -> value); one job per seed."""

    __tablename__ = "study_cells"
    __table_args__ = (UniqueConstraint("study_id", "number", name="uq_study_cells_study_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study_id: Mapped[str] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)  # 0, 1, ... in the study's order
    values: Mapped[dict[str, Any]] = mapped_column(JSON)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key", name="uq_jobs_user_idempotency_key"),
        Index("ix_jobs_user_created", "user_id", "created_at"),
        Index("ix_jobs_status_heartbeat", "status", "heartbeat_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    group_id: Mapped[str | None] = mapped_column(
        ForeignKey("groups.id", ondelete="SET NULL"), index=True, default=None
    )
    study_id: Mapped[str | None] = mapped_column(
        ForeignKey("studies.id", ondelete="SET NULL"), index=True, default=None
    )
    cell_id: Mapped[int | None] = mapped_column(
        ForeignKey("study_cells.id", ondelete="SET NULL"), index=True, default=None
    )
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    # A fork's parent job (None once the parent is deleted) and the step of the parent's
    # checkpoint it started from, which stays.
    parent_id: Mapped[str | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL"), index=True, default=None
    )
    forked_at_step: Mapped[int | None] = mapped_column(BigInteger, default=None)
    # Hash of the request that created the job, to refuse an Idempotency-Key reused for another request.
    request_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), default=None)

    status: Mapped[str] = mapped_column(String(16), default=JobStatus.queued)
    queue: Mapped[str] = mapped_column(String(16), default="cpu")
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_host: Mapped[str | None] = mapped_column(String(255), default=None)
    device: Mapped[str | None] = mapped_column(String(32), default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)

    last_step: Mapped[int] = mapped_column(BigInteger, default=0)
    resumed_from_step: Mapped[int | None] = mapped_column(BigInteger, default=None)
    latest_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    points_written: Mapped[int] = mapped_column(BigInteger, default=0)
    # Bumped by every insert of points (worker.attempt.insert_points): while it is unchanged,
    # the API's cached table of the job's points is current without counting them.
    points_version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    mean_return: Mapped[float | None] = mapped_column(Float, default=None)
    best_return: Mapped[float | None] = mapped_column(Float, default=None)
    train_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    # Scores of the whole run (app/run_scores.py), stored when the job finishes.
    final_score: Mapped[float | None] = mapped_column(Float, default=None)
    mmer: Mapped[float | None] = mapped_column(Float, default=None)
    eval_score: Mapped[float | None] = mapped_column(Float, default=None)

    tags: Mapped[list[JobTag]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="JobTag.tag"
    )
    events: Mapped[list[JobEvent]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="JobEvent.id"
    )
    artifacts: Mapped[list[Artifact]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="Artifact.id"
    )

    @property
    def total_steps(self) -> int:
        return int(self.spec.get("total_steps", 0))

    @property
    def tag_names(self) -> list[str]:
        return [t.tag for t in self.tags]


class JobTag(Base):
    __tablename__ = "job_tags"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)


class JobEvent(Base):
    """A status transition with its time; the job's history and the event stream's status events."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    message: Mapped[str | None] = mapped_column(Text, default=None)


class MetricPoint(Base):
    """One trainer update's metrics. (job_id, step) is unique: a resumed run writes no duplicate."""

    __tablename__ = "metric_points"
    __table_args__ = (UniqueConstraint("job_id", "step", name="uq_metric_points_job_step"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(BigInteger)
    values: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Artifact(Base):
    """A file the worker left in the job's folder: policies and checkpoints.

    No path is stored: each kind has a fixed place in `Settings.job_dir(job_id)`, which is
    how the routes find the files (worker/attempt.py lists them).
    """

    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("job_id", "kind", name="uq_artifacts_job_kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))  # policy, best_policy, checkpoint
    step: Mapped[int] = mapped_column(BigInteger)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReplayStatus(StrEnum):
    queued = "queued"
    running = "running"
    ready = "ready"
    failed = "failed"


class Replay(Base):
    """A recorded episode (`kind` "replay") or a memory probe ("probe") of one of a job's policies.

    The worker stores its files in the job's folder, `replays/<id>.json` (and `<id>.mp4`
    for an episode), named by this row's id alone (app/replays.py).
    """

    __tablename__ = "replays"
    __table_args__ = (Index("ix_replays_user_status", "user_id", "status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # replay | probe
    status: Mapped[str] = mapped_column(String(16), default=ReplayStatus.queued)
    # policy (final | best | checkpoint), seed, deterministic, max_steps, and episodes for a probe.
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Written by the recording worker while it runs; the reaper fails a running replay
    # whose heartbeat stopped, so a lost one does not hold the user's replay quota.
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
