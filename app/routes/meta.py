"""What can be chosen (`/api/envs`, `/api/models`), who am I (`/api/me`), and service health."""

from __future__ import annotations

from typing import Any, get_args

from fastapi import APIRouter, Depends, Response, status

from app import schemas
from app.auth import UserDep, metrics_access
from app.db import ping
from app.deps import CeleryDep, SettingsDep
from app.prometheus import CONTENT_TYPE, registry_for, render
from app.schemas import error_responses
from rlcore.envs import ENVS
from rlcore.spec import (
    ALGORITHM_DEFAULTS,
    NOT_APPLYING,
    Algorithm,
    Device,
    ModelKind,
    TrainSpec,
    applying_fields,
    env_defaults,
)

router = APIRouter(tags=["meta"])
AUTH_ERRORS = error_responses(401, 403, 422)


@router.get("/api/envs", responses=AUTH_ERRORS, response_model=list[schemas.EnvOut])
def list_envs(user: UserDep) -> list[schemas.EnvOut]:
    """The environments a spec may name."""
    return [
        schemas.EnvOut(
            id=e.id,
            description=e.description,
            solved_return=e.solved_return,
            needs_memory=e.needs_memory,
            max_episode_steps=e.max_episode_steps,
            family=e.family,
            pixels=e.pixels,
            action_names=list(e.action_names),
            options=list(e.options),
            defaults={
                a.value: {
                    k: getattr(v, "value", v)
                    for k, v in env_defaults(e.id, a).items()
                    if k not in NOT_APPLYING[a]
                }
                for a in Algorithm
            },
        )
        for e in ENVS.values()
    ]


@router.get("/api/models", responses=AUTH_ERRORS, response_model=schemas.ModelsOut)
def list_models(user: UserDep) -> schemas.ModelsOut:
    """Algorithms, model variants, devices, the fields each algorithm uses and their defaults."""
    fields = {a.value: applying_fields(a) for a in Algorithm}
    per_algo = {
        a.value: {k: v for k, v in d.items() if k in fields[a.value]} for a, d in ALGORITHM_DEFAULTS.items()
    }
    algo_keys = {k for d in ALGORITHM_DEFAULTS.values() for k in d}
    spec_defaults: dict[str, Any] = {
        name: field.default
        for name, field in TrainSpec.model_fields.items()
        if name not in algo_keys and not field.is_required()
    }
    return schemas.ModelsOut(
        algorithms=[a.value for a in Algorithm],
        models=[m.value for m in ModelKind],
        devices=list(get_args(Device)),
        algorithm_fields=fields,
        algorithm_defaults=per_algo,
        spec_defaults={k: getattr(v, "value", v) for k, v in spec_defaults.items()},
        spec_schema=TrainSpec.model_json_schema(),
    )


@router.get("/api/me", responses=AUTH_ERRORS, response_model=schemas.Me)
def me(user: UserDep) -> schemas.Me:
    return schemas.Me(user=user.name, token_name=user.token_name)


@router.get("/healthz", tags=["health"])
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", tags=["health"], responses={503: {"description": "Database or broker unreachable"}})
def readyz(settings: SettingsDep, celery: CeleryDep, response: Response) -> dict[str, str]:
    """Database and broker reachable: 200, else 503 naming what is not."""
    checks: dict[str, str] = {}
    try:
        ping(settings.database_url)
        checks["database"] = "ok"
    except Exception as error:
        checks["database"] = f"error: {type(error).__name__}"
    try:
        if settings.is_embedded_broker:
            folder = settings.broker_dir / "messages"
            if not folder.is_dir():
                raise FileNotFoundError(folder)
        else:
            with celery.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
        checks["broker"] = "ok"
    except Exception as error:
        checks["broker"] = f"error: {type(error).__name__}"
    ready = all(v == "ok" for v in checks.values())
    if not ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return {"status": "ok" if ready else "unavailable", **checks}


@router.get(
    "/metrics",
    tags=["health"],
    response_class=Response,
    dependencies=[Depends(metrics_access)],
    responses=error_responses(401, 403, 404, d404="RLSERVE_METRICS is off (the default)"),
)
def prometheus(settings: SettingsDep) -> Response:
    """Prometheus text: jobs by status, queue depth, metric points, live tokens (see RLSERVE_METRICS)."""
    return Response(render(registry_for(settings)), media_type=CONTENT_TYPE)
