"""FastAPI dependencies for settings, the Celery client and database sessions.

The trivial ones are `async`: FastAPI runs a plain `def` dependency in its thread pool,
and on a loaded 2-core host each such hop costs more than the work it hands over.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from app.db import get_sessionmaker
from app.hub import Hub, Subscription, TooManyStreams
from app.settings import Settings


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_celery(request: Request) -> Any:
    return request.app.state.celery


async def get_session(settings: Annotated[Settings, Depends(get_settings)]) -> AsyncIterator[Session]:
    """One session per request; closed (and rolled back if uncommitted) afterwards.

    Opening one does no I/O (the connection comes at the first query); closing may (a
    rollback), so it runs in the thread pool.
    """
    session = get_sessionmaker(settings.database_url)()
    try:
        yield session
    finally:
        await run_in_threadpool(session.close)


async def get_hub(request: Request) -> Hub:
    return request.app.state.hub


def subscribe(hub: Hub, user_id: int, job_id: str | None = None) -> Subscription:
    """A stream's subscription to the hub; 429 when the user has the most streams open."""
    try:
        return hub.subscribe(user_id, job_id)
    except TooManyStreams as error:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, str(error)) from None


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
CeleryDep = Annotated[Any, Depends(get_celery)]
HubDep = Annotated[Hub, Depends(get_hub)]
