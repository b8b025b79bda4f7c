"""Who is calling: the authenticated principal of a request, and the role checks every endpoint makes.

A request proves its user in one of three ways, tried in this order:

- `Authorization: Bearer TOKEN` with a token from `tigao token create USER`;
- `Authorization: Basic base64(user:secret)` where the secret is the user's password or one of
  the user's tokens (what Camunda clients send);
- the session cookie set by `POST /api/v1/session`; a state-changing request (POST, PUT, PATCH,
  DELETE) made with the cookie must also send the session's CSRF token in `X-CSRF-Token` or, for
  an HTML form, in a `csrf_token` field (checked here, for every path).

The principal's roles are the directory's roles of that user, read on every request, so a
directory reload takes effect at once. Use the dependencies in handlers:

    def handler(who: Reader): ...   # any logged-in directory user
    def handler(who: Staff): ...    # may act (start, claim, complete): not an auditor-only user
    def handler(who: Admin): ...    # has the `admin` role
    def handler(who: AuditorOrAdmin): ...

and pass `who.user` as the engine's actor: the actor in history is always the authenticated user.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from engine.assignment import Person
from engine.errors import NotAllowed
from engine.identity import SESSION_HOURS, TOKEN_PREFIX, Identity, NotAuthenticated

from .deps import IdentityDep

SESSION_COOKIE = "tigao_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
ADMIN, AUDITOR = "admin", "auditor"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
SLOW_MAX = 2.0


def slowdown_base() -> float:
    """Seconds a failed login waits first (doubling with each further failure, up to SLOW_MAX)."""
    try:
        return max(0.0, float(os.environ.get("TIGAO_LOGIN_SLOWDOWN", "0.25")))
    except ValueError:
        return 0.25


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: a directory user with the directory's roles."""

    user: str
    name: str
    roles: frozenset[str] = field(default_factory=frozenset)
    via: str = "token"  # token | basic | session
    csrf: str | None = None

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.roles

    @property
    def is_auditor(self) -> bool:
        return AUDITOR in self.roles

    @property
    def read_only(self) -> bool:
        """An auditor-only user: reads, verifies, replays, exports, seals; nothing else."""
        return self.roles == frozenset({AUDITOR})

    def to_json(self) -> dict[str, object]:
        return {"user": self.user, "name": self.name, "roles": sorted(self.roles), "via": self.via,
                "admin": self.is_admin, "read_only": self.read_only}


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


# HTTP Basic sends the password with every request, and argon2 takes a good part of a second on
# purpose: a password proven in the last BASIC_CACHE_SECONDS is accepted again without rehashing
# (kept in this process's memory only, as a SHA-256 of user and password).
BASIC_CACHE_SECONDS = 60.0
_proven: dict[str, float] = {}
_proven_lock = threading.Lock()


def _proof_key(user: str, password: str) -> str:
    return hashlib.sha256(f"{user}\x00{password}".encode("utf-8", "surrogatepass")).hexdigest()


def login(identity: Identity, user: str, password: str, address: str, cache: bool = False) -> None:
    """Check a password with lockout and slowdown; raise NotAuthenticated (or LockedOut) on failure.

    With `cache` (HTTP Basic), a password proven within the last minute is not hashed again.
    """
    key = _proof_key(user, password)
    now = time.monotonic()
    if cache:
        with _proven_lock:
            if _proven.get(key, 0.0) > now:
                return
    identity.check_not_locked(user, address)
    if identity.check_password(user, password):
        identity.clear_failures(user)
        if cache:
            with _proven_lock:
                if len(_proven) > 10_000:
                    _proven.clear()
                _proven[key] = now + BASIC_CACHE_SECONDS
        return
    n = identity.record_failure(user, address)
    time.sleep(min(slowdown_base() * 2 ** (n - 1), SLOW_MAX))
    raise NotAuthenticated("wrong user or password")


def set_session_cookie(request: Request, response: Response, cookie: str) -> None:
    """Put a session (from `Identity.create_session`) on a response, as `POST /api/v1/session` does.

    HttpOnly and SameSite=Lax always; Secure when the request came over TLS.
    """
    response.set_cookie(SESSION_COOKIE, cookie, max_age=SESSION_HOURS * 3600, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https", path="/")


def csrf_ok(who: Principal, sent: str | None) -> bool:
    """Whether `sent` (a header or a hidden form field) is the CSRF token of the caller's session."""
    return who.csrf is not None and bool(sent) and secrets.compare_digest(str(sent), who.csrf)


def _principal(identity: Identity, user: str, via: str, csrf: str | None = None,
               person: Person | None = None) -> Principal:
    person = person or identity.engine.directory().users.get(user)
    if person is None:
        raise NotAuthenticated(f"user '{user}' is not in the directory")
    return Principal(user, person.name, frozenset(person.roles), via, csrf)


def authenticate(request: Request, identity: Identity) -> Principal | None:
    """The request's principal, None when it carries no credentials; NotAuthenticated when they fail."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value:
            owner = identity.token_owner(value)
            return _principal(identity, owner.id, "token", person=owner)
        if scheme.lower() == "basic" and value:
            try:
                user, sep, secret = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise NotAuthenticated("the Basic credentials are not base64 of 'user:password'") from None
            if not sep or not user:
                raise NotAuthenticated("the Basic credentials need 'user:password' or 'user:token'")
            if secret.startswith(TOKEN_PREFIX):
                if identity.token_user(secret) != user:
                    raise NotAuthenticated("that token belongs to another user")
            else:
                login(identity, user, secret, client_address(request), cache=True)
            return _principal(identity, user, "basic")
        raise NotAuthenticated("unsupported Authorization header; use 'Bearer TOKEN' or Basic")
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        info = identity.session(cookie)
        if info.person is None:
            raise NotAuthenticated(f"user '{info.user}' is not in the directory")
        return _principal(identity, info.user, "session", info.csrf, info.person)
    return None


async def _csrf_sent(request: Request) -> str | None:
    """The CSRF token a request sends: the header, or for an HTML form post its `csrf_token` field."""
    sent = request.headers.get(CSRF_HEADER)
    if sent:
        return sent
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        value = (await request.form()).get(CSRF_FIELD)  # parsed once; the handler reads the same form
        return value if isinstance(value, str) else None
    return None


async def optional_principal(request: Request, identity: IdentityDep) -> Principal | None:
    """The caller, or None without credentials. A cookie-authenticated unsafe request must carry
    its session's CSRF token (header or form field), on every path."""
    who = await run_in_threadpool(authenticate, request, identity)  # database work, off the event loop
    if who is None:
        return None
    if who.via == "session" and request.method in UNSAFE and not csrf_ok(who, await _csrf_sent(request)):
        raise NotAllowed(f"a request made with the session cookie must send the session's CSRF token in the "
                         f"{CSRF_HEADER} header (or a '{CSRF_FIELD}' form field)")
    request.state.user = who.user  # for the request log line
    return who


async def current_principal(request: Request, identity: IdentityDep) -> Principal:
    who = await optional_principal(request, identity)
    if who is None:
        raise NotAuthenticated("log in first: send 'Authorization: Bearer TOKEN' (tigao token create USER), "
                               "HTTP Basic, or the cookie from POST /api/v1/session")
    return who


async def require_staff(who: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if who.read_only:
        raise NotAllowed(f"'{who.user}' is an auditor and may only read, verify, replay, export and seal")
    return who


async def require_admin(who: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if not who.is_admin:
        raise NotAllowed(f"only an administrator (directory role '{ADMIN}') may do this; '{who.user}' is not one")
    return who


async def require_auditor_or_admin(who: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if not (who.is_admin or who.is_auditor):
        raise NotAllowed(f"only an auditor or an administrator may do this; '{who.user}' is neither")
    return who


Reader = Annotated[Principal, Depends(current_principal)]
MaybePrincipal = Annotated[Principal | None, Depends(optional_principal)]
Staff = Annotated[Principal, Depends(require_staff)]
Admin = Annotated[Principal, Depends(require_admin)]
AuditorOrAdmin = Annotated[Principal, Depends(require_auditor_or_admin)]
