"""The Tigao server: one FastAPI app over the engine library.

How the pieces plug in
----------------------
- Every group of endpoints is an `APIRouter` in its own module (`web/api/tasks.py`,
  `web/camunda.py`, the web pages' modules ...). The module exposes `router`; `create_app` includes
  it, with the prefix (`/api/v1`, `/engine-rest`, or none for pages). A new module adds one line
  to `ROUTERS` below (or to `create_app` if it needs a different prefix).
- A handler gets an Engine with `engine: EngineDep` (from `web.deps`): one Engine from a small pool,
  lent to this request only (an Engine is not thread-safe). Never create Engines in handlers.
  A handler that completes, claims, starts or messages runs the command through
  `commands: CommandsDep` (`commands.run(lambda e: e.complete(...))`): with group commit on it
  shares the next durable commit with concurrent requests (engine/groupcommit.py); the handler
  reads what it answers with afterwards, on its own Engine.
- A handler gets the caller with one of the dependencies of `web.auth`: `who: Reader` (any
  logged-in user), `Staff` (may act), `Admin`, `AuditorOrAdmin`, or `MaybePrincipal` (None when
  not logged in; for pages that redirect to a login form). `who.user` is the actor to give the
  engine: the actor in history is always the authenticated user. Role checks live in these
  dependencies; the engine refuses what the user may not do on the task itself (not a candidate...).
- A web page logs a browser in with `POST /api/v1/session`, or from its own form handler with
  `web.auth.login(identity, user, password, client_address(request))`, then
  `cookie, info = identity.create_session(user)` and `web.auth.set_session_cookie(request, response,
  cookie)`. The cookie then authenticates every request; every unsafe request made with it needs the
  session's CSRF token (`who.csrf`, put it in the page) in the `X-CSRF-Token` header or a hidden
  `csrf_token` form field. The auth dependencies check that on every path, pages included.
- Errors: raise the engine's errors (`InputError`, `NotFound`, `NotAllowed`, `Conflict`, `FormError`)
  or `web.problems.ApiError(status, detail)`; `web.problems` renders them as problem+json
  (or Camunda's `{type, message}` under /engine-rest). Never build error responses by hand.

`tigao serve` calls `create_app` and runs it on uvicorn; tests call it with a database URL and use
`fastapi.testclient.TestClient(app)`.
"""

from __future__ import annotations

import logging
import os
import time
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from . import problems
from engine.groupcommit import GroupCommit

from .deps import EnginePool, group_commit_enabled
from .worker import BackgroundWorker

API = "/api/v1"
log = logging.getLogger("tigao.http")
MAX_JSON_BYTES = 1024 * 1024
MAX_UPLOAD_BYTES = int(os.environ.get("TIGAO_MAX_UPLOAD_BYTES", str(10 * 1024 * 1024)))
# Paths whose POST bodies are multipart uploads; every other body must be JSON.
UPLOAD_PATHS = {f"{API}/deployments", f"{API}/directory"}
# `tigao serve` sets sys.setswitchinterval to this (Python's default is 0.005 s): see cli.serve.
SWITCH_INTERVAL = 0.0005
SWAGGER_STATIC = Path(fastapi_offline.__file__).parent / "static"


def _routers() -> list[tuple[Any, str]]:
    from .api import definitions, instances, migrate, misc, session, tasks, tokens

    from . import camunda_starts, external_tasks
    from .api import incidents

    return [(session.router, API), (tokens.router, API), (definitions.router, API), (instances.router, API),
            (tasks.router, API), (misc.router, API), (incidents.router, API), (migrate.router, API),
            (external_tasks.router, problems.CAMUNDA_PREFIX), (camunda_starts.router, problems.CAMUNDA_PREFIX)]


def create_app(db_url: str | None = None, *, worker: bool = True, worker_interval: float = 2.0,
               group_commit: bool | None = None) -> FastAPI:
    """The server app over the database at `db_url` (default: TIGAO_DB or ./tigao.db).

    Args:
        db_url: a SQLite path or a PostgreSQL URL, as for every other command.
        worker: also run the deadline worker in a background thread (`tigao serve` without
            `--no-worker`).
        worker_interval: seconds between the worker's passes.
        group_commit: let concurrent completions, claims, starts and messages share one durable
            commit (engine/groupcommit.py); None: TIGAO_GROUP_COMMIT decides (default on).
    """
    background = BackgroundWorker(db_url, worker_interval) if worker else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if background is not None:
            background.start()
        try:
            yield
        finally:
            if background is not None:
                background.stop()
            if app.state.group is not None:
                app.state.group.close()
            app.state.pool.close()

    app = FastAPI(title="Tigao", version="1", lifespan=lifespan, openapi_url=f"{API}/openapi.json",
                  docs_url=None, redoc_url=None,
                  description="A durable BPMN 2.0 workflow engine: processes, tasks, deadlines, audit. "
                              "Errors are application/problem+json (RFC 9457).")
    app.state.pool = EnginePool(db_url)
    app.state.group = GroupCommit(db_url) if group_commit_enabled(group_commit) else None
    app.state.db_url = db_url
    problems.install(app)
    for router, prefix in _routers():
        app.include_router(router, prefix=prefix)
    from . import camunda

    app.include_router(camunda.router, prefix=problems.CAMUNDA_PREFIX)

    app.mount(f"{API}/static", StaticFiles(directory=SWAGGER_STATIC), name="api-static")
    from . import pages

    pages.install(app)

    @app.get(f"{API}/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=f"{API}/openapi.json", title="Tigao API",
                                   swagger_js_url=f"{API}/static/swagger-ui-bundle.js",
                                   swagger_css_url=f"{API}/static/swagger-ui.css",
                                   swagger_favicon_url=f"{API}/static/favicon.png")

    app.add_middleware(GuardAndLog)
    return app


def _bad_url(request: Request) -> str | None:
    """Refuse what no handler should ever see: undecodable or NUL-bearing paths and queries."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    for part in (raw, request.scope.get("query_string", b"")):
        try:
            text = urllib.parse.unquote_to_bytes(part.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            return "the URL is not UTF-8 after percent-decoding"
        if "\x00" in text:
            return "the URL contains a NUL character"
    return None


class GuardAndLog:
    """Every request: refuse what no handler should see (bad URLs, bodies the APIs do not take),
    then log one line with its status and time. A plain ASGI middleware: Starlette's
    `BaseHTTPMiddleware` (`app.middleware("http")`) streams every response through a task group
    and a memory channel, which cost more CPU per request than the rest of the framework."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.monotonic()
        request = Request(scope)
        refused = _refused(request)
        status = 500  # what the log says if the app fails before it answers

        async def send_seen(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if refused is not None:
                await refused(scope, receive, send_seen)
            else:
                await self.app(scope, receive, send_seen)
        finally:
            ms = (time.monotonic() - start) * 1000
            user = scope.get("state", {}).get("user", "-")
            log.info('%s "%s %s" %d %.1fms %s', problems_client(request), request.method, request.url.path,
                     status, ms, user)


def problems_client(request: Request) -> str:
    return request.client.host if request.client else "-"


def _refused(request: Request) -> Response | None:
    """The problem response for a request no handler should see, or None to go on."""
    why = _bad_url(request)
    if why:
        return problems.problem(request, 400, why)
    path = request.url.path.rstrip("/")
    # Only the APIs are held to JSON bodies; web pages (outside these prefixes) may post HTML forms.
    if request.method in ("POST", "PUT", "PATCH", "DELETE") and path.startswith((API, problems.CAMUNDA_PREFIX)):
        length = request.headers.get("content-length")
        upload = path in UPLOAD_PATHS
        limit = MAX_UPLOAD_BYTES if upload else MAX_JSON_BYTES
        if length is None and "chunked" in request.headers.get("transfer-encoding", "").lower():
            return problems.problem(request, 411, "send the body with a Content-Length")
        if length is not None:
            if not length.isdigit():
                return problems.problem(request, 400, "Content-Length is not a number")
            if int(length) > limit:
                return problems.problem(request, 413, f"the body is {int(length):,} bytes; the limit here is "
                                                      f"{limit:,}")
            if int(length) > 0:
                ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
                json_like = ctype == "application/json" or ctype.endswith("+json")
                if upload and ctype != "multipart/form-data":
                    return problems.problem(request, 415, "upload the files as multipart/form-data")
                if not upload and not json_like:
                    return problems.problem(request, 415, f"send the body as application/json, not "
                                                          f"'{ctype or 'no content type'}'")
    return None
