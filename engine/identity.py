"""Credentials for the directory's users: argon2 passwords, API tokens, browser sessions, lockout.

The directory (TOML) says who exists and which roles they hold; this module only proves that a
request comes from one of them. Secrets are stored hashed: passwords with argon2, tokens and
session ids (long random strings) with SHA-256, so a copy of the database gives no way in.

Times here are the real clock, never the engine's simulated one: a token expires in the
operator's world, not in the campaign year being simulated.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, update

from storage.models import ApiToken, Credential, LoginFailure, WebSession

from .assignment import Person
from .core import Engine
from .errors import EngineError, InputError, NotFound

TOKEN_PREFIX = "tgo_"
SESSION_HOURS = 12
MIN_PASSWORD = 8
MAX_SECRET = 1024  # longer passwords or tokens are refused before any hashing
USER_FAILURES, ADDRESS_FAILURES = 5, 20  # failures within FAILURE_WINDOW that lock a user / an address
FAILURE_WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)

_hasher = PasswordHasher()
# Verifying against this keeps the time of "no such user" equal to "wrong password".
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class NotAuthenticated(EngineError):
    """No credentials, or credentials that do not prove who the caller is."""

    exit_code = 7
    http_status = 401


class LockedOut(NotAuthenticated):
    """Too many failed logins for this user or from this address; try again later."""

    http_status = 429

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


def utcnow() -> datetime:
    return datetime.now(UTC)


def _sha(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass
class TokenInfo:
    id: int
    user: str
    name: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.__dict__.items()}


@dataclass
class SessionInfo:
    user: str
    csrf: str
    expires_at: datetime
    person: Person | None = None  # the directory's entry, None when the user has left it


class Identity:
    """Passwords, tokens and sessions kept in the engine's database."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def _known_user(self, user: str) -> None:
        if user not in self.engine.directory().users:
            raise NotFound(f"no user '{user}' in the directory; load it with 'tigao directory load FILE'")

    # ------------------------------------------------------------------ passwords
    def set_password(self, user: str, password: str) -> None:
        """Store an argon2 hash of `password` for a directory user, replacing any previous one."""
        self._known_user(user)
        if len(password) < MIN_PASSWORD:
            raise InputError(f"a password needs at least {MIN_PASSWORD} characters")
        if len(password) > MAX_SECRET:
            raise InputError(f"a password has at most {MAX_SECRET} characters")
        digest = _hasher.hash(password)
        with self.engine._tx() as s:
            s.merge(Credential(user_id=user, password_hash=digest, updated_at=utcnow()))

    def check_password(self, user: str, password: str) -> bool:
        """True when `password` is the user's; constant work whether or not the user exists."""
        if not user or len(password) > MAX_SECRET or len(user) > 200:
            return False
        with self.engine._tx() as s:
            row = s.get(Credential, user)
            stored = row.password_hash if row is not None else None
        try:
            _hasher.verify(stored or _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            return False
        return stored is not None and user in self.engine.directory().users

    # ------------------------------------------------------------------ failed logins
    def check_not_locked(self, user: str, address: str) -> None:
        """Raise LockedOut when the user or the address is locked now."""
        now = utcnow()
        with self.engine._tx() as s:
            rows = list(s.scalars(select(LoginFailure).where(
                LoginFailure.key.in_([f"user:{user}", f"addr:{address}"]))))
        for r in rows:
            if r.locked_until is not None and r.locked_until > now:
                wait = int((r.locked_until - now).total_seconds()) + 1
                what = "this user" if r.key.startswith("user:") else "this address"
                raise LockedOut(f"too many failed logins for {what}; try again in {wait} seconds", wait)

    def record_failure(self, user: str, address: str) -> int:
        """Count a failed login for the user and the address; returns the user's count in the window."""
        now = utcnow()
        counts = {}
        with self.engine._tx() as s:
            for key, limit in ((f"user:{user[:200]}", USER_FAILURES), (f"addr:{address}", ADDRESS_FAILURES)):
                r = s.get(LoginFailure, key)
                if r is None or now - r.first_at > FAILURE_WINDOW:
                    r = s.merge(LoginFailure(key=key, count=0, first_at=now, last_at=now, locked_until=None))
                r.count += 1
                r.last_at = now
                if r.count >= limit:
                    r.locked_until = now + LOCKOUT
                counts[key[:4]] = r.count
        return counts["user"]

    def clear_failures(self, user: str) -> None:
        with self.engine._tx() as s:
            s.execute(delete(LoginFailure).where(LoginFailure.key == f"user:{user}"))

    # ------------------------------------------------------------------ API tokens
    def create_token(self, user: str, name: str | None = None, expires: timedelta | None = None) -> tuple[int, str]:
        """A new token for `user`: returns (id, token). The token is shown once and stored hashed."""
        self._known_user(user)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = utcnow()
        with self.engine._tx() as s:
            row = ApiToken(user_id=user, name=name, token_hash=_sha(token), created_at=now,
                           expires_at=now + expires if expires else None)
            s.add(row)
            s.flush()
            return row.id, token

    def tokens(self, user: str | None = None) -> list[TokenInfo]:
        with self.engine._tx() as s:
            q = select(ApiToken).order_by(ApiToken.id)
            if user:
                q = q.where(ApiToken.user_id == user)
            return [TokenInfo(t.id, t.user_id, t.name, t.created_at, t.expires_at, t.revoked_at, t.last_used_at)
                    for t in s.scalars(q)]

    def revoke_token(self, token_id: int) -> TokenInfo:
        with self.engine._tx() as s:
            t = s.get(ApiToken, token_id)
            if t is None:
                raise NotFound(f"no token {token_id}; 'tigao token list' shows them")
            if t.revoked_at is None:
                t.revoked_at = utcnow()
            return TokenInfo(t.id, t.user_id, t.name, t.created_at, t.expires_at, t.revoked_at, t.last_used_at)

    def token_user(self, token: str) -> str:
        """The user a token belongs to; NotAuthenticated when it is unknown, expired or revoked.

        The user may have left the directory since: `token_owner` checks that too.
        """
        return self._token(token)[0]

    def token_owner(self, token: str) -> Person:
        """The directory entry of a token's user (one transaction for both lookups)."""
        user, person = self._token(token)
        if person is None:
            raise NotAuthenticated(f"the token's user '{user}' is not in the directory")
        return person

    def _token(self, token: str) -> tuple[str, Person | None]:
        if not token.startswith(TOKEN_PREFIX) or len(token) > MAX_SECRET:
            raise NotAuthenticated("not a Tigao API token; create one with 'tigao token create USER'")
        now = utcnow()
        # A read transaction: checking a token never waits for (nor holds) SQLite's write lock.
        with self.engine._tx(read=True) as s:
            t = s.scalar(select(ApiToken).where(ApiToken.token_hash == _sha(token)))
            if t is None:
                raise NotAuthenticated("unknown API token")
            if t.revoked_at is not None:
                raise NotAuthenticated(f"API token {t.id} was revoked")
            if t.expires_at is not None and t.expires_at <= now:
                raise NotAuthenticated(f"API token {t.id} expired at {t.expires_at.isoformat()}")
            token_id, user, last_used = t.id, t.user_id, t.last_used_at
            person = self.engine._dir(s).users.get(user)
        # Written at most once a minute: a busy client should not turn every read into a write.
        if last_used is None or now - last_used > timedelta(minutes=1):
            with self.engine._tx() as s:
                s.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))
        return user, person

    # ------------------------------------------------------------------ browser sessions
    def create_session(self, user: str) -> tuple[str, SessionInfo]:
        """A new session: returns (cookie value, info with the CSRF token)."""
        cookie = secrets.token_urlsafe(32)
        now = utcnow()
        info = SessionInfo(user, secrets.token_urlsafe(24), now + timedelta(hours=SESSION_HOURS))
        with self.engine._tx() as s:
            s.add(WebSession(token_hash=_sha(cookie), user_id=user, csrf=info.csrf, created_at=now,
                             expires_at=info.expires_at))
        return cookie, info

    def session(self, cookie: str) -> SessionInfo:
        if len(cookie) > MAX_SECRET:
            raise NotAuthenticated("not a session cookie")
        with self.engine._tx(read=True) as s:
            r = s.scalar(select(WebSession).where(WebSession.token_hash == _sha(cookie)))
            if r is None or r.ended_at is not None or r.expires_at <= utcnow():
                raise NotAuthenticated("the session has ended; log in again")
            return SessionInfo(r.user_id, r.csrf, r.expires_at, self.engine._dir(s).users.get(r.user_id))

    def end_session(self, cookie: str) -> None:
        with self.engine._tx() as s:
            r = s.scalar(select(WebSession).where(WebSession.token_hash == _sha(cookie[:MAX_SECRET])))
            if r is not None and r.ended_at is None:
                r.ended_at = utcnow()
