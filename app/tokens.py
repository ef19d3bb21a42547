"""API tokens: random, shown once, stored as sha256; creating, expiry, listing, revoking, `rlserve up`'s.

No FastAPI here: the `rlserve token` commands import this module alone (`app/auth.py`
checks the token of each request).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Token, TokenScope, User, as_utc, utcnow

TOKEN_PREFIX = "rls_"


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


LOCAL_USER = "local"
LOCAL_TOKEN_NAME = "up"
LOCAL_TOKEN_FILE = "local-token"
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def parse_expiry(expires_in: str | None, expires: str | None, now: datetime | None = None) -> datetime | None:
    """When a new token expires: `--expires-in 30d` (m, h, d, w) or `--expires YYYY-MM-DD` (00:00 UTC)."""
    now = now or utcnow()
    if expires_in and expires:
        raise TokenError("pass --expires-in or --expires, not both")
    if expires_in:
        match = re.fullmatch(r"\s*(\d+)\s*([mhdw])\s*", expires_in)
        if match is None or int(match.group(1)) == 0:
            raise TokenError(f"--expires-in {expires_in!r}: expected a count and m, h, d or w, e.g. 30d")
        return now + int(match.group(1)) * _UNITS[match.group(2)]
    if expires:
        try:
            when = datetime.fromisoformat(expires)
        except ValueError:
            raise TokenError(f"--expires {expires!r}: expected a date, YYYY-MM-DD") from None
        when = as_utc(when)
        if when <= now:
            raise TokenError(f"--expires {expires}: that is not in the future")
        return when
    return None


@dataclass(frozen=True)
class TokenInfo:
    """A token as `rlserve token list` shows it: never the secret."""

    name: str
    user: str
    scope: str
    state: str  # active, expired, revoked
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


def list_tokens(session: Session) -> list[TokenInfo]:
    """Every token, by user and then creation time."""
    now = utcnow()
    rows = session.execute(
        select(Token, User.name).join(User, User.id == Token.user_id).order_by(User.name, Token.created_at)
    ).all()
    return [
        TokenInfo(
            name=token.name,
            user=user,
            scope=token.scope,
            state="revoked" if token.revoked_at else ("active" if is_live(token, now) else "expired"),
            created_at=as_utc(token.created_at),
            expires_at=as_utc(token.expires_at) if token.expires_at else None,
            last_used_at=as_utc(token.last_used_at) if token.last_used_at else None,
        )
        for token, user in rows
    ]


def revoke_tokens(session: Session, name: str, user: str | None = None) -> int:
    """Revoke the unrevoked tokens named `name` (of `user`, needed when several users have one)."""
    query = select(Token, User.name).join(User, User.id == Token.user_id)
    query = query.where(Token.name == name, Token.revoked_at.is_(None))
    if user is not None:
        query = query.where(User.name == user)
    rows = session.execute(query).all()
    if not rows:
        whose = f" of user {user!r}" if user else ""
        raise TokenError(f"no unrevoked token named {name!r}{whose} (see `rlserve token list`)")
    owners = sorted({owner for _, owner in rows})
    if len(owners) > 1:
        raise TokenError(f"users {', '.join(owners)} each have a token named {name!r}: pass --user")
    now = utcnow()
    for token, _ in rows:
        token.revoked_at = now
    session.flush()
    return len(rows)


def local_token(session: Session, data_dir: Path) -> str:
    """The token `rlserve up` prints: the one kept in DATA_DIR/local-token while it is live, else a new one.

    A new one replaces (revokes) an older `up` token whose file was deleted or which stopped
    working, so deleting the file is how to get a fresh token.
    """
    path = data_dir / LOCAL_TOKEN_FILE
    if path.is_file():
        raw = path.read_text().strip()
        stored = session.scalar(select(Token).where(Token.token_hash == hash_token(raw)))
        if stored is not None and is_live(stored):
            return raw
    with contextlib.suppress(TokenError):  # TokenError: there was none
        revoke_tokens(session, LOCAL_TOKEN_NAME, LOCAL_USER)
    raw = create_token(session, LOCAL_USER, LOCAL_TOKEN_NAME)
    _write_private(path, raw + "\n")
    return raw


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only (0600), replacing it whole."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        os.fchmod(file.fileno(), 0o600)  # O_CREAT's mode does not apply to a file left over
        file.write(text)
    os.replace(tmp, path)


def format_time(value: datetime | None) -> str:
    """A time for the token table, to the minute, or '-'."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value else "-"
