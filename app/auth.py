"""FastAPI dependencies for who is calling: the bearer token of each request, checked.

A token comes only in the `Authorization` header, never in the URL: URLs end up in access
logs, proxies and browser history. Tokens may expire and can be revoked (`app/tokens.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.deps import SettingsDep, get_session
from app.models import Token, TokenScope, User, as_utc, utcnow
from app.tokens import hash_token

_bearer = HTTPBearer(auto_error=False, description="A token from `rlserve token create NAME`.")


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"})


def _bearer_token(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str:
    """The token of the Authorization header; 401 without one, or with one only in the URL."""
    if credentials is not None and credentials.credentials:
        return credentials.credentials
    if "token" in request.query_params:
        raise _unauthorized(
            "a token in the URL (?token=) is not accepted, since URLs end up in logs: "
            "send 'Authorization: Bearer <token>'"
        )
    raise _unauthorized(
        "missing token: send 'Authorization: Bearer <token>' (create one with `rlserve token create NAME`)"
    )


def authenticate(session: Session, raw: str) -> tuple[Token, User]:
    """The live token `raw` and its user; 401 saying why if it is unknown, revoked or expired."""
    row = session.execute(
        select(Token, User).join(User, User.id == Token.user_id).where(Token.token_hash == hash_token(raw))
    ).first()
    if row is None:
        raise _unauthorized("invalid token")
    found, user = row
    now = utcnow()
    if found.revoked_at is not None:
        raise _unauthorized(f"token {found.name!r} was revoked; create a new one with `rlserve token create`")
    if found.expires_at is not None and as_utc(found.expires_at) <= now:
        when = as_utc(found.expires_at).strftime("%Y-%m-%d %H:%M UTC")
        raise _unauthorized(
            f"token {found.name!r} expired at {when}; create a new one with `rlserve token create`"
        )
    # Written at most once a minute: a write on every request would contend with the worker on SQLite.
    if found.last_used_at is None or now - as_utc(found.last_used_at) > timedelta(minutes=1):
        found.last_used_at = now
        session.commit()
    return found, user


@dataclass(frozen=True)
class CurrentUser:
    id: int
    name: str
    token_name: str


def current_user(
    request: Request,
    session: Annotated[Session, Depends(get_session)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> CurrentUser:
    """The user whose bearer token came with the request; 401 without a valid one."""
    found, user = authenticate(session, _bearer_token(request, credentials))
    if found.scope != TokenScope.api:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"token {found.name!r} may only read /metrics")
    return CurrentUser(id=user.id, name=user.name, token_name=found.name)


def metrics_access(
    request: Request,
    settings: SettingsDep,
    session: Annotated[Session, Depends(get_session)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Who may read the API port's `/metrics`, by RLSERVE_METRICS: nobody, a metrics token, or anyone.

    Only `metrics` tokens pass under `token`: the counts are service-wide, not one user's.
    """
    if settings.metrics == "off" or settings.metrics_port is not None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "/metrics is off here (see RLSERVE_METRICS)")
    if settings.metrics == "open":
        return
    found, _ = authenticate(session, _bearer_token(request, credentials))
    if found.scope != TokenScope.metrics:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "/metrics needs a metrics token: `rlserve token create NAME --scope metrics`",
        )


UserDep = Annotated[CurrentUser, Depends(current_user)]
