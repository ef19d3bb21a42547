"""Prometheus metrics, read from the database at each scrape (the database is the source of truth).

Who may scrape is `RLSERVE_METRICS` (app/settings.py, checked in app/auth.py); with
`RLSERVE_METRICS_PORT` the metrics get a port of their own (`start_metrics_server`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from app.db import get_sessionmaker
from app.models import Job, JobStatus, Token, as_utc, utcnow
from app.settings import Settings

CONTENT_TYPE = CONTENT_TYPE_LATEST
QUEUES = ("cpu", "gpu")


class ServiceCollector(Collector):
    """Jobs by status, queue depth, metric points stored and live tokens, counted per scrape."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with get_sessionmaker(self.database_url)() as session:
            by_status = dict(session.execute(select(Job.status, func.count()).group_by(Job.status)).all())
            by_queue = dict(
                session.execute(
                    select(Job.queue, func.count()).where(Job.status == JobStatus.queued).group_by(Job.queue)
                ).all()
            )
            points = session.scalar(select(func.coalesce(func.sum(Job.points_written), 0))) or 0
            now = utcnow()
            expiries = session.scalars(select(Token.expires_at).where(Token.revoked_at.is_(None))).all()
        jobs = GaugeMetricFamily("rlserve_jobs", "Jobs by status.", labels=["status"])
        for state in JobStatus:
            jobs.add_metric([state.value], by_status.get(state.value, 0))
        yield jobs
        depth = GaugeMetricFamily("rlserve_queue_depth", "Jobs waiting in each queue.", labels=["queue"])
        for queue in QUEUES:
            depth.add_metric([queue], by_queue.get(queue, 0))
        yield depth
        yield GaugeMetricFamily(
            "rlserve_metric_points_written", "Metric points stored for existing jobs.", value=int(points)
        )
        live = sum(1 for when in expiries if when is None or as_utc(when) > now)
        yield GaugeMetricFamily("rlserve_tokens_active", "Tokens neither revoked nor expired.", value=live)


def registry_for(settings: Settings) -> CollectorRegistry:
    """A registry of this service's metrics only (not the process-wide default one)."""
    registry = CollectorRegistry()
    registry.register(ServiceCollector(settings.database_url))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The Prometheus text exposition of `registry`."""
    return generate_latest(registry)


def start_metrics_server(settings: Settings, registry: CollectorRegistry) -> Any:
    """Serve `registry` on RLSERVE_METRICS_ADDR:RLSERVE_METRICS_PORT in a thread; returns the server."""
    assert settings.metrics_port is not None
    try:
        server, _thread = start_http_server(settings.metrics_port, settings.metrics_addr, registry)
    except OSError as error:
        raise RuntimeError(
            f"cannot serve metrics on {settings.metrics_addr}:{settings.metrics_port} "
            f"(RLSERVE_METRICS_PORT): {error.strerror}"
        ) from None
    return server
