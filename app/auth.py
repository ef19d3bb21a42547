"""Bearer tokens: random, shown once, stored as sha256; a FastAPI dependency for the current user."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Query, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.deps import get_session
from app.models import Token, User, as_utc, utcnow

TOKEN_PREFIX = "rls_"
_bearer = HTTPBearer(auto_error=False, description="A token from `rlserve token create NAME`.")


def hash_token(token: str) -> str:
    """What the database stores: tokens are 256 random bits, so a plain sha256 is enough."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, user_name: str, token_name: str) -> str:
    """Create a token for `user_name` (the user too, if new); returns the token, shown only now."""
    user = session.scalar(select(User).where(User.name == user_name))
    if user is None:
        user = User(name=user_name)
        session.add(user)
        session.flush()
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(Token(user_id=user.id, name=token_name, token_hash=hash_token(token)))
    session.flush()
    return token


@dataclass(frozen=True)
class CurrentUser:
    id: int
    name: str
    token_name: str


def current_user(
    session: Annotated[Session, Depends(get_session)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    token: Annotated[
        str | None,
        Query(description="The token, for clients that cannot send headers (EventSource, links)."),
    ] = None,
) -> CurrentUser:
    """The user whose bearer token came with the request; 401 without a valid one."""
    raw = credentials.credentials if credentials is not None else token
    if not raw:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing token: send 'Authorization: Bearer <token>' "
            "(create one with `rlserve token create NAME`)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    row = session.execute(
        select(Token, User).join(User, User.id == Token.user_id).where(Token.token_hash == hash_token(raw))
    ).first()
    if row is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "invalid token", headers={"WWW-Authenticate": "Bearer"}
        )
    found, user = row
    now = utcnow()
    # Written at most once a minute: a write on every request would contend with the worker on SQLite.
    if found.last_used_at is None or now - as_utc(found.last_used_at) > timedelta(minutes=1):
        found.last_used_at = now
        session.commit()
    return CurrentUser(id=user.id, name=user.name, token_name=found.name)


UserDep = Annotated[CurrentUser, Depends(current_user)]
