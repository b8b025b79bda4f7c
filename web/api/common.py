"""Shared pieces of the /api/v1 routers: request bodies, paging, ids, JSON shapes."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, model_validator

from engine.errors import InputError

DEFAULT_LIMIT, MAX_LIMIT = 50, 500
MAX_OFFSET = 100_000
MAX_ID = 2**31 - 1  # PostgreSQL `integer`; a larger id cannot name anything stored
MAX_DEPTH = 32

Id = Annotated[int, Path(ge=1, le=MAX_ID, description="A numeric id.")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Page size, 1 to {MAX_LIMIT}.")]
Cursor = Annotated[str | None, Query(max_length=200, description="The `next_cursor` of the previous page.")]
ShortText = Annotated[str | None, Query(max_length=200)]


def _check_value(v: Any, where: str, depth: int = 0) -> None:
    """JSON values a database can store: no NUL characters, no lone surrogates, bounded depth."""
    if depth > MAX_DEPTH:
        raise ValueError(f"{where}: nested more than {MAX_DEPTH} levels deep")
    if isinstance(v, str):
        if "\x00" in v:
            raise ValueError(f"{where}: contains a NUL character")
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{where}: is not valid Unicode (a lone surrogate)") from None
    elif isinstance(v, dict):
        for k, x in v.items():
            _check_value(k, where, depth + 1)
            _check_value(x, f"{where}/{k}", depth + 1)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            _check_value(x, f"{where}/{i}", depth + 1)


def check_text(value: str | None, name: str) -> str | None:
    """A query or path string checked like a body value (InputError when it cannot be stored)."""
    if value is not None:
        try:
            _check_value(value, name)
        except ValueError as exc:
            raise InputError(str(exc)) from exc
    return value


class Body(BaseModel):
    """A JSON request body: unknown fields are refused, every string must be storable."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, values: Any) -> Any:
        _check_value(values, "body")
        return values


def decode_cursor(cursor: str | None) -> int:
    """The offset an opaque cursor stands for; InputError when it is not one of ours."""
    if not cursor:
        return 0
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii") + b"==="))
        offset = int(raw["o"])
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeEncodeError):
        raise InputError("the cursor is not one this API gave out; start again without it") from None
    if not 0 <= offset <= MAX_OFFSET:
        raise InputError("the cursor is not one this API gave out; start again without it")
    return offset


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def page(rows: list[Any], offset: int, limit: int) -> dict[str, Any]:
    """One page from rows fetched with `limit=offset+limit+1` (the extra row says there is more)."""
    items = rows[offset:offset + limit]
    more = len(rows) > offset + limit and offset + limit <= MAX_OFFSET
    return {"items": [jsonable(x) for x in items], "next_cursor": encode_cursor(offset + limit) if more else None}


def page_after(rows: list[Any], offset: int, limit: int) -> dict[str, Any]:
    """One page from rows the engine fetched from `offset` with `limit+1` (paged in SQL)."""
    more = len(rows) > limit and offset + limit <= MAX_OFFSET
    return {"items": [jsonable(x) for x in rows[:limit]],
            "next_cursor": encode_cursor(offset + limit) if more else None}


def jsonable(v: Any) -> Any:
    """Engine values (dataclasses with to_json, datetimes) as JSON values."""
    if hasattr(v, "to_json"):
        v = v.to_json()
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, datetime):
        return v.isoformat()
    return v


PAGE_SCHEMA: dict[str, Any] = {"type": "object", "properties": {
    "items": {"type": "array", "items": {"type": "object"}}, "next_cursor": {"type": ["string", "null"]}}}
