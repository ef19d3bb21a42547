"""Schemathesis over the whole OpenAPI: no 5xx, no undocumented status, every reply as declared.

The API runs in-process (schemathesis's ASGI transport, which also cuts event streams
short) on each backend, with no worker: jobs the fuzzer submits stay queued, so the
run's time is bounded by the examples alone.

Not checked: schema-valid requests that are refused (schemathesis's positive-data check).
The spec's rules across fields (bptt_length <= rollout_length, num_envs * rollout_length
<= 1,000,000, minibatches <= chunks) cannot be written in JSON Schema; they are in the
fields' descriptions, and a request that breaks one gets a declared 422.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis

from tests.conftest import backend_settings, user_tokens

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
]


@pytest.fixture(scope="module", params=["embedded", "postgres"])
def fuzz_app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The API on one backend, not served, with no worker and no reaper; `.state.token` is alice's."""
    from app.main import create_app

    data_dir: Path = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    with backend_settings(request.param, data_dir) as settings:
        app = create_app(settings, reaper=False)
        app.state.token, _ = user_tokens(settings)
        yield app
        assert not app.state.server_errors, f"the API answered 5xx: {app.state.server_errors}"


# No `max-time`: with one, schemathesis repeats its phases until the time is up. One pass
# takes about 20 s per backend; the timeout is the safety net.
@pytest.mark.timeout(300)
def test_every_operation_answers_as_its_schema_says(fuzz_app: Any) -> None:
    from schemathesis.engine import Status, from_schema
    from schemathesis.engine.events import EngineFinished, FatalError, NonFatalError, ScenarioFinished

    config = schemathesis.Config.from_dict(
        {
            "headers": {"Authorization": f"Bearer {fuzz_app.state.token}"},
            "max-stream-events": 1,  # an event stream is read up to its first event,
            # or this long: a 404 or a first event comes at once, but on a loaded machine the
            # first call of a stream route (the hub's LISTEN connection) took over 0.5 s.
            "operations": [{"include-path-regex": "/events$", "request-timeout": 3}],
            "request-timeout": 30,
            "seed": 1,
            "cache": {"enabled": False},  # each run starts from nothing learnt before: reproducible
            # Coverage (boundary values, wrong types, missing parameters) and a few random cases.
            "generation": {"max-examples": 6, "database": "none"},
            "phases": {"examples": {"enabled": False}, "stateful": {"enabled": False}},
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        }
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app, config=config)
    operations = {
        f"{method.upper()} {path}" for path, item in schema.raw_schema["paths"].items() for method in item
    }
    problems: list[str] = []
    tested: set[str] = set()
    stop = None
    for event in from_schema(schema).execute():
        if isinstance(event, ScenarioFinished) and event.status != Status.SKIP:
            tested.add(event.recorder.label)
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.status == Status.FAILURE and check.failure_info is not None:
                        failure = check.failure_info.failure
                        problems.append(
                            f"{event.recorder.label}: {failure.title}: {failure.message}\n"
                            f"    {check.failure_info.code_sample}"
                        )
        elif isinstance(event, NonFatalError):
            problems.append(f"{event.label}: error {event.info.title}: {event.value!r}")
        elif isinstance(event, FatalError):
            raise event.exception
        elif isinstance(event, EngineFinished):
            stop = event.stop_reason
    assert not problems, "\n".join(sorted(set(problems)))
    assert stop == "completed", stop
    assert tested == operations, operations - tested
