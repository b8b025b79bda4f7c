"""API tokens over HTTP, for administrators (the CLI's `tigao token` does the same on the database)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import Field

from engine.errors import InputError
from engine.timeutil import add_iso_duration, is_duration

from ..auth import Admin
from ..deps import IdentityDep
from ..problems import responses
from .common import Body, Id, ShortText, check_text

router = APIRouter(tags=["tokens"], responses=responses(400, 401, 403))


class TokenBody(Body):
    user: Annotated[str, Field(min_length=1, max_length=200)]
    name: Annotated[str | None, Field(max_length=200)] = None
    expires: Annotated[str | None, Field(max_length=40, description="ISO 8601 duration, e.g. P90D")] = None


@router.get("/tokens")
def list_tokens(identity: IdentityDep, who: Admin, user: ShortText = None) -> dict[str, Any]:
    """Every token (never its secret), or one user's."""
    check_text(user, "user")
    return {"items": [t.to_json() for t in identity.tokens(user)], "next_cursor": None}


@router.post("/tokens", status_code=201, responses=responses(404))
def create_token(body: TokenBody, identity: IdentityDep, who: Admin) -> dict[str, Any]:
    """A new token for a directory user; the response is the only time the token is shown."""
    delta = None
    if body.expires:
        if not is_duration(body.expires):
            raise InputError(f"'{body.expires}' is not an ISO 8601 duration (e.g. P90D, PT12H)")
        now = datetime.now(UTC)
        delta = add_iso_duration(now, body.expires) - now
        if delta.total_seconds() <= 0:
            raise InputError("expires must be a positive duration")
    token_id, secret = identity.create_token(body.user, body.name, delta)
    return {"id": token_id, "user": body.user, "name": body.name, "token": secret}


@router.delete("/tokens/{token_id}", responses=responses(404))
def revoke_token(token_id: Id, identity: IdentityDep, who: Admin) -> dict[str, Any]:
    """Revoke a token: it stops working at once."""
    return identity.revoke_token(token_id).to_json()
