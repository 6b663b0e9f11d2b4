"""Web console sessions: who is logged in through a browser, and the CSRF token of each login.

A browser holds the session's token in a cookie; the database keeps only its SHA-256, so a
copy of the database lets no one in. Each session has its own CSRF token, which every call that
changes something must carry besides the cookie (a form field or a header): another site can
make a browser send the cookie, never read the token. Sessions live in the database, so every
``serve`` worker of one database knows them, and a logout, a removed user or a new password
(whoever sets it: ``ocptask user add`` on the database, another server) ends them at once: a
session holds a digest of its user's password hash as it was at login, and is good only while
the hash is the same.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from fastapi import Request
from sqlalchemy import delete
from sqlmodel import Field, SQLModel, col, select

from engine.clock import as_utc, utcnow
from engine.db.records import timestamp
from engine.db.store import Store

from .users import User, UserRecord, user_of

LIFETIME = timedelta(hours=12)


class SessionRecord(SQLModel, table=True):
    __tablename__ = "console_session"

    token_hash: str = Field(primary_key=True)
    user_id: int = Field(index=True)  # no foreign key: a removed user's sessions just fail
    csrf: str
    expires: datetime = timestamp(nullable=False)
    # _stamp of the user's password hash at login; None (a session older than it): ended.
    password_stamp: str | None = None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _stamp(password_hash: str) -> str:
    return hashlib.sha256(b"console-session\0" + password_hash.encode()).hexdigest()


class ConsoleSessions:
    """Open, find and close console sessions (``app.state.sessions`` in the API)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.ensure_schema()

    def open(self, user: User) -> tuple[str, str]:
        """A new session for the user: (the cookie's token, the session's CSRF token)."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        now = utcnow()
        with self.store.write() as session:
            stale = delete(SessionRecord).where(col(SessionRecord.expires) < now)
            session.exec(stale)  # type: ignore[call-overload]
            # The password as it is now (checked a moment ago): a user gone since ends it.
            record = session.get(UserRecord, user.id)
            session.add(
                SessionRecord(
                    token_hash=_digest(token),
                    user_id=user.id,
                    csrf=csrf,
                    expires=now + LIFETIME,
                    password_stamp=None if record is None else _stamp(record.password_hash),
                )
            )
        return token, csrf

    def find(self, token: str) -> tuple[User, str] | None:
        """The session's user and CSRF token; None for an unknown, ended or expired one, or
        one whose user was removed or has had a new password since."""
        if not token or len(token) > 128:
            return None
        query = (
            select(SessionRecord, UserRecord)
            .join(UserRecord, col(UserRecord.id) == col(SessionRecord.user_id))
            .where(SessionRecord.token_hash == _digest(token))
        )
        with self.store.read() as session:
            row = session.exec(query).first()
        if row is None:
            return None
        found, user = row
        if as_utc(found.expires) < utcnow():  # type: ignore[operator]
            return None
        if found.password_stamp != _stamp(user.password_hash):
            return None
        return user_of(user), found.csrf

    def close(self, token: str) -> None:
        with self.store.write() as session:
            gone = delete(SessionRecord).where(col(SessionRecord.token_hash) == _digest(token))
            session.exec(gone)  # type: ignore[call-overload]


COOKIE = "ocptask_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfRefused(Exception):
    """A call that changes something came with the session's cookie but not its CSRF token."""


def session_of(request: Request) -> tuple[User, str] | None:
    """The logged-in user and the session's CSRF token, or None."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    sessions: ConsoleSessions = request.app.state.sessions
    return sessions.find(token)


def check_csrf(request: Request, csrf: str, given: str | None = None) -> None:
    """Refuse a changing call whose token (``given``, else the header) is not the session's."""
    if request.method in SAFE_METHODS:
        return
    offered = given if given is not None else request.headers.get(CSRF_HEADER, "")
    if not offered or not hmac.compare_digest(offered.encode(), csrf.encode()):
        raise CsrfRefused()
