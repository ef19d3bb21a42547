"""FastAPI dependencies for settings, the Celery client and database sessions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from app.db import get_sessionmaker
from app.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_celery(request: Request) -> Any:
    return request.app.state.celery


def get_session(settings: Annotated[Settings, Depends(get_settings)]) -> Iterator[Session]:
    """One session per request; closed (and rolled back if uncommitted) afterwards."""
    session = get_sessionmaker(settings.database_url)()
    try:
        yield session
    finally:
        session.close()


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
CeleryDep = Annotated[Any, Depends(get_celery)]
