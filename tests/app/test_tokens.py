"""Tokens that expire or are revoked, metrics-only tokens, migration 0002, and who may read /metrics."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from app.auth import authenticate
from app.db import session_scope, upgrade
from app.main import create_app
from app.models import TokenScope, utcnow
from app.settings import Settings
from app.tokens import TokenError, create_token, hash_token, parse_expiry, revoke_tokens
from tests.conftest import Stack, ThreadedServer, _create_pg_database, free_port


def _token(stack: Stack, user: str, name: str, **options: object) -> str:
    with session_scope(stack.settings.database_url) as session:
        return create_token(session, user, name, **options)  # type: ignore[arg-type]


def test_an_expired_token_is_401_saying_it_expired(stack: Stack) -> None:
    token = _token(stack, "dave", "old", expires_at=utcnow() - timedelta(seconds=1))
    response = stack.client(token=token).get("/api/me")
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]

    later = _token(stack, "dave", "new", expires_at=utcnow() + timedelta(days=1))
    assert stack.client(token=later).get("/api/me").json()["token_name"] == "new"


def test_a_revoked_token_is_401_saying_it_was_revoked(stack: Stack) -> None:
    token = _token(stack, "erin", "laptop")
    client = stack.client(token=token)
    assert client.get("/api/me").status_code == 200
    with session_scope(stack.settings.database_url) as session:
        assert revoke_tokens(session, "laptop", "erin") == 1
    response = client.get("/api/me")
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]
    # The name is free again for a new token.
    assert stack.client(token=_token(stack, "erin", "laptop")).get("/api/me").status_code == 200


def test_one_live_token_per_name_and_user(stack: Stack) -> None:
    _token(stack, "frank", "ci")
    with pytest.raises(TokenError, match="already has a token named 'ci'"):
        _token(stack, "frank", "ci")
    _token(stack, "grace", "ci")  # another user's token may share the name
    with session_scope(stack.settings.database_url) as session, pytest.raises(TokenError, match="--user"):
        revoke_tokens(session, "ci")


def test_a_metrics_token_cannot_use_the_api(stack: Stack) -> None:
    token = _token(stack, "prometheus", "scraper", scope=TokenScope.metrics)
    response = stack.client(token=token).get("/api/jobs")
    assert response.status_code == 403
    assert "/metrics" in response.json()["detail"]


def test_parse_expiry() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert parse_expiry(None, None, now) is None
    assert parse_expiry("30d", None, now) == now + timedelta(days=30)
    assert parse_expiry("12h", None, now) == now + timedelta(hours=12)
    assert parse_expiry("90m", None, now) == now + timedelta(minutes=90)
    assert parse_expiry("2w", None, now) == now + timedelta(weeks=2)
    assert parse_expiry(None, "2027-01-31", now) == datetime(2027, 1, 31, tzinfo=UTC)
    for bad in ("30", "0d", "-1d", "30y", "d"):
        with pytest.raises(TokenError, match="--expires-in"):
            parse_expiry(bad, None, now)
    with pytest.raises(TokenError, match="not in the future"):
        parse_expiry(None, "2026-11-30", now)
    with pytest.raises(TokenError, match="YYYY-MM-DD"):
        parse_expiry(None, "next week", now)
    with pytest.raises(TokenError, match="not both"):
        parse_expiry("1d", "2027-01-01", now)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_migration_0002_keeps_existing_tokens_working(backend: str, tmp_path: Path) -> None:
    if backend == "sqlite":
        url, drop = f"sqlite:///{tmp_path / 'old.db'}", lambda: None
    else:
        url, drop = _create_pg_database()
    try:
        upgrade(url, "0001")  # a database from before expiry, revocation and scopes
        raw = "rls_made-before-0002"
        with session_scope(url) as session:
            session.execute(
                text("INSERT INTO users (id, name, created_at) VALUES (1, 'old', :t)"), {"t": utcnow()}
            )
            session.execute(
                text("INSERT INTO tokens (user_id, name, token_hash, created_at) VALUES (1, 'old', :h, :t)"),
                {"h": hash_token(raw), "t": utcnow()},
            )
        upgrade(url)
        with session_scope(url) as session:
            token, user = authenticate(session, raw)
            assert (user.name, token.scope, token.expires_at, token.revoked_at) == ("old", "api", None, None)
            revoke_tokens(session, "old")
    finally:
        drop()


@contextlib.contextmanager
def _serve(settings: Settings) -> Iterator[str]:
    """Another API on the stack's database, with other settings; yields its URL."""
    server = ThreadedServer(create_app(settings, reaper=False))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def test_metrics_are_off_by_default(stack: Stack) -> None:
    assert Settings(data_dir=stack.settings.data_dir).metrics == "off"
    assert stack.client(auth=False).get("/metrics").status_code == 404
    assert stack.client().get("/metrics").status_code == 404


def test_metrics_with_token_need_a_metrics_token(stack: Stack) -> None:
    scraper = _token(stack, "prometheus", f"scrape-{free_port()}", scope=TokenScope.metrics)
    with _serve(replace(stack.settings, metrics="token")) as url:
        assert httpx.get(f"{url}/metrics").status_code == 401
        assert httpx.get(f"{url}/metrics", params={"token": scraper}).status_code == 401
        user = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {stack.token}"})
        assert user.status_code == 403
        assert "--scope metrics" in user.json()["detail"]
        response = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {scraper}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'rlserve_jobs{status="queued"}' in response.text


def test_metrics_open_on_the_api_port_or_on_their_own(stack: Stack) -> None:
    stack.submit(total_steps=200)
    with _serve(replace(stack.settings, metrics="open")) as url:
        text_ = httpx.get(f"{url}/metrics").text
    assert "# TYPE rlserve_jobs gauge" in text_
    assert 'rlserve_queue_depth{queue="cpu"}' in text_
    assert "rlserve_metric_points_written" in text_
    assert "rlserve_tokens_active" in text_
    total = sum(float(line.split()[-1]) for line in text_.splitlines() if line.startswith("rlserve_jobs{"))
    assert total >= 1

    port = free_port()
    with _serve(replace(stack.settings, metrics="open", metrics_port=port)) as url:
        assert httpx.get(f"{url}/metrics").status_code == 404  # not on the API's port
        own = httpx.get(f"http://127.0.0.1:{port}/metrics")
        assert own.status_code == 200 and "rlserve_jobs{" in own.text
    with pytest.raises(httpx.ConnectError):  # stopped with the API
        httpx.get(f"http://127.0.0.1:{port}/metrics")


def test_metrics_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="RLSERVE_METRICS must be off, token or open"):
        Settings(data_dir=tmp_path, metrics="yes")
    with pytest.raises(ValueError, match="RLSERVE_METRICS_PORT needs RLSERVE_METRICS=open"):
        Settings(data_dir=tmp_path, metrics="token", metrics_port=9100)
