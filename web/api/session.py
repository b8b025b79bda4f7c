"""Browser sessions: log in with a password for a cookie and a CSRF token; log out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import Field

from engine.identity import SESSION_HOURS, NotAuthenticated

from ..auth import CSRF_HEADER, SESSION_COOKIE, MaybePrincipal, Reader, client_address, login
from ..deps import IdentityDep
from ..problems import responses
from .common import Body

router = APIRouter(tags=["session"])


class LoginBody(Body):
    user: Annotated[str, Field(min_length=1, max_length=200)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]


@router.post("/session", responses=responses(400, 401, 429), status_code=201)
def create_session(body: LoginBody, request: Request, response: Response, identity: IdentityDep) -> dict[str, Any]:
    """Log in with a password: sets the session cookie and returns the CSRF token.

    Send the token in `X-CSRF-Token` with every state-changing request made with the cookie.
    Repeated failures are slowed down and then locked out per user and per address.
    """
    login(identity, body.user, body.password, client_address(request))
    cookie, info = identity.create_session(body.user)
    response.set_cookie(SESSION_COOKIE, cookie, max_age=SESSION_HOURS * 3600, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https", path="/")
    request.state.user = body.user
    return {"user": info.user, "csrf_token": info.csrf, "csrf_header": CSRF_HEADER,
            "expires_at": info.expires_at.isoformat()}


@router.get("/session", responses=responses(401))
def show_session(who: Reader) -> dict[str, Any]:
    """Who the request is authenticated as (with any of the ways of logging in)."""
    return {**who.to_json(), "csrf_token": who.csrf}


@router.delete("/session", status_code=204, responses=responses(401, 403))
def delete_session(request: Request, who: MaybePrincipal, identity: IdentityDep) -> Response:
    """Log out: ends the cookie's session (send the CSRF token too)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if who is None or who.via != "session" or not cookie:
        raise NotAuthenticated("no session to end: this request has no session cookie")
    identity.end_session(cookie)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
