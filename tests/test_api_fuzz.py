"""The REST API fuzzed from its own OpenAPI schema (schemathesis, in-process over ASGI):
no request makes a 500, and every answer matches the schema. The examples are the same
on every run (`deterministic`); GENRED_FUZZ_EXAMPLES sets how many per operation.

The dashboard behind it is the real one: a library decided by the real stages, the
daemon's Worker starting the jobs, writes with the Bearer token."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import response_schema_conformance  # noqa: E402

from genred.config import parse_config  # noqa: E402
from genred.web import create_app  # noqa: E402
from genred.web.context import WebContext  # noqa: E402
from tests.dashboard_library import TOKEN, Dashboard  # noqa: E402

EXAMPLES = int(os.environ.get("GENRED_FUZZ_EXAMPLES", "30"))
SEEN: Counter[tuple[str, str, int]] = Counter()


class Switch:
    """The ASGI app schemathesis calls: at import (to read the schema) an app over an
    empty store, then the dashboard the module fixture builds."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


_EMPTY = Path(tempfile.mkdtemp(prefix="genred-fuzz-"))
_empty_context = WebContext(
    config=lambda: parse_config(f"data_dir: {_EMPTY}\nweb: {{api_token: {TOKEN}}}\n", env={})
)
SWITCH = Switch(create_app([], None, web=_empty_context))
schema = schemathesis.openapi.from_asgi(
    "/api/openapi.json",
    SWITCH,
    config=schemathesis.Config.from_dict(
        {
            "generation": {"max-examples": EXAMPLES, "database": "none", "deterministic": True},
            "auth": {"openapi": {"HTTPBearer": {"bearer": TOKEN}}},
        }
    ),
)


@pytest.fixture(scope="module", autouse=True)
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    board = Dashboard(tmp_path_factory.mktemp("fuzz"))

    @board.app.middleware("http")
    async def record(request: Any, call_next: Any) -> Any:
        response = await call_next(request)
        route = request.scope.get("route")
        SEEN[(request.method, getattr(route, "path", request.url.path), response.status_code)] += 1
        return response

    SWITCH.app = board.app
    yield board
    board.worker.cancel.set()
    board.worker.wait_idle(10)
    board.context.close()
    board.harness.close()
    _empty_context.close()
    shutil.rmtree(_EMPTY, ignore_errors=True)


@schema.parametrize()
def test_no_request_breaks_the_api(case: Any) -> None:
    case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])


def test_zz_the_fuzzer_reached_every_operation_with_the_token(dashboard: Dashboard) -> None:
    """Runs after the fuzzing (same module): each operation was called, and the writes
    got through (the token was sent), so the checks above saw real answers."""
    if not SEEN:
        pytest.skip("run together with test_no_request_breaks_the_api")
    operations = {(method, path) for method, path, _ in SEEN}
    schema_paths = dashboard.app.openapi()["paths"]
    wanted = {(m.upper(), p) for p, ops in schema_paths.items() for m in ops}
    assert wanted <= operations, wanted - operations
    assert not any(status >= 500 for _, _, status in SEEN)
    assert SEEN[("PUT", "/api/tracks/{track_id}/override", 200)] > 0
    assert any(s == 202 for m, p, s in SEEN if p == "/api/jobs/{stage}")
    assert not any(s >= 500 for m, p, s in SEEN if p.startswith("/api/playlists"))


def test_the_schema_declares_the_bearer_scheme(dashboard: Dashboard) -> None:
    raw = dashboard.app.openapi()
    assert raw["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert raw["paths"]["/api/tracks/{track_id}/override"]["put"]["security"]
