"""Errors as `application/problem+json` (RFC 9457), and Camunda's `{type, message}` under /engine-rest.

Every error a client sees goes through `problem()`: engine errors map by their `http_status`,
request validation becomes 400 with one `errors` entry per failing field, and anything unexpected
is a 500 whose body says nothing about the code (the traceback goes to the server log only).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.errors import DefinitionError, EngineError, FormError
from engine.identity import LockedOut, NotAuthenticated

log = logging.getLogger("tigao.http")
PROBLEM = "application/problem+json"
CAMUNDA_PREFIX = "/engine-rest"

TITLES = {400: "Bad request", 401: "Not logged in", 403: "Not allowed", 404: "Not found",
          405: "Method not allowed", 409: "Conflict", 411: "Length required", 413: "Too large",
          415: "Unsupported media type", 422: "Unprocessable content", 429: "Too many failed logins",
          500: "Internal error", 503: "Storage unavailable"}
# Camunda 7's exception names, which its clients switch on.
CAMUNDA_TYPES = {400: "InvalidRequestException", 401: "AuthenticationException", 403: "AuthorizationException",
                 404: "InvalidRequestException", 409: "OptimisticLockingException",
                 422: "InvalidRequestException", 500: "RestException", 503: "ProcessEngineException"}


class ApiError(Exception):
    """An error raised by the web layer itself (not the engine), with its HTTP status."""

    def __init__(self, status: int, detail: str, errors: list[dict[str, str]] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.detail, self.errors, self.headers = status, detail, errors, headers


def problem(request: Request | None, status: int, detail: str, errors: list[dict[str, str]] | None = None,
            headers: dict[str, str] | None = None, slug: str | None = None) -> JSONResponse:
    """One error response in the shape the path's clients expect."""
    path = request.url.path if request is not None else ""
    if request is not None and not path.startswith(("/api/", CAMUNDA_PREFIX)):
        from .pages import error_page  # a page's error is a page, in the user's language

        return error_page(request, detail, status, [e.get("message", "") for e in errors or []][:20])
    if status == 401:
        headers = {"WWW-Authenticate": 'Bearer, Basic realm="tigao"', **(headers or {})}
    if path.startswith(CAMUNDA_PREFIX):
        body: dict[str, Any] = {"type": CAMUNDA_TYPES.get(status, "RestException"), "message": detail}
        return JSONResponse(body, status_code=status, headers=headers)
    title = TITLES.get(status, "Error")
    body = {"type": f"urn:tigao:problem:{slug or title.lower().replace(' ', '-')}", "title": title,
            "status": status, "detail": detail}
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM)


def _engine_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, EngineError)
    errors = None
    headers = None
    if isinstance(exc, FormError):
        errors = [{"path": p, "message": m} for p, m in exc.errors]
    elif isinstance(exc, DefinitionError):
        errors = [{"path": p.file + (f":{p.line}" if p.line else ""), "message": p.message,
                   "file": p.file, "line": p.line, "element": p.element} for p in exc.problems]  # type: ignore[misc]
    if isinstance(exc, LockedOut):
        headers = {"Retry-After": str(exc.retry_after)}
    status = exc.http_status if 400 <= exc.http_status < 600 else 500
    if status >= 500 and status != 503:
        log.error("engine error on %s %s: %s", request.method, request.url.path, exc.message)
    slug = type(exc).__name__
    slug = "".join("-" + c.lower() if c.isupper() else c for c in slug).lstrip("-")
    return problem(request, status, exc.message, errors, headers, slug=slug)


def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return problem(request, exc.status, exc.detail, exc.errors, exc.headers)


def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for e in exc.errors():
        loc = [str(x) for x in e.get("loc", ())]
        if e.get("type") == "json_invalid":
            return problem(request, 400, f"the body is not valid JSON: {e.get('msg', '')}".rstrip(": "),
                           slug="malformed-json")
        where = "/".join(loc[1:] if loc and loc[0] == "body" else loc)
        msg = str(e.get("msg", "invalid"))
        if e.get("type") == "extra_forbidden":
            msg = "unknown field; remove it"
        errors.append({"path": where or "body", "message": msg})
    detail = "; ".join(f"{x['path']}: {x['message']}" for x in errors[:5]) or "the request is not valid"
    return problem(request, 400, detail, errors, slug="invalid-request")


def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "error")
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no such resource: {request.url.path}; see /api/v1/docs"
    return problem(request, exc.status_code, detail, headers=getattr(exc, "headers", None))


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("internal error on %s %s", request.method, request.url.path)
    return problem(request, 500, "internal error; the server log has the details", slug="internal")


def install(app: FastAPI) -> None:
    """Register the handlers that turn every exception into a problem response."""
    app.add_exception_handler(EngineError, _engine_error)
    app.add_exception_handler(NotAuthenticated, _engine_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)


PROBLEM_SCHEMA = {
    "type": "object",
    "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                   "detail": {"type": "string"},
                   "errors": {"type": "array", "items": {"type": "object", "properties": {
                       "path": {"type": "string"}, "message": {"type": "string"}}}}},
    "required": ["type", "title", "status", "detail"],
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem responses an operation may give."""
    return {c: {"description": TITLES.get(c, "Error"), "content": {PROBLEM: {"schema": PROBLEM_SCHEMA}}}
            for c in codes}
