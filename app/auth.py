"""Bearer tokens: random, shown once, stored as sha256; FastAPI dependencies for who is calling.

A token comes only in the `Authorization` header, never in the URL: URLs end up in access
logs, proxies and browser history. Tokens may expire and can be revoked (`app/tokens.py`).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.deps import SettingsDep, get_session
from app.models import Token, TokenScope, User, as_utc, utcnow

TOKEN_PREFIX = "rls_"
_bearer = HTTPBearer(auto_error=False, description="A token from `rlserve token create NAME`.")


class TokenError(ValueError):
    """A token cannot be created or changed as asked; the message says why."""


def hash_token(token: str) -> str:
    """What the database stores: tokens are 256 random bits, so a plain sha256 is enough."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    session: Session,
    user_name: str,
    token_name: str,
    *,
    expires_at: datetime | None = None,
    scope: TokenScope = TokenScope.api,
) -> str:
    """Create a token for `user_name` (the user too, if new); returns the token, shown only now."""
    user = session.scalar(select(User).where(User.name == user_name))
    if user is None:
        user = User(name=user_name)
        session.add(user)
        session.flush()
    # One live token per name and user, so that `rlserve token revoke NAME` means one thing.
    taken = session.scalars(
        select(Token).where(Token.user_id == user.id, Token.name == token_name, Token.revoked_at.is_(None))
    )
    if any(is_live(t) for t in taken):
        raise TokenError(
            f"user {user_name!r} already has a token named {token_name!r}; "
            f"pass another --label or revoke it first (`rlserve token revoke {token_name}`)"
        )
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        Token(
            user_id=user.id,
            name=token_name,
            token_hash=hash_token(token),
            scope=scope,
            expires_at=expires_at,
        )
    )
    session.flush()
    return token


def is_live(token: Token, now: datetime | None = None) -> bool:
    """Neither revoked nor expired."""
    now = now or utcnow()
    return token.revoked_at is None and (token.expires_at is None or as_utc(token.expires_at) > now)


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
