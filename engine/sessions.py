"""Web console sessions: who is logged in through a browser, and the CSRF token of each login.

A browser holds the session's token in a cookie; the database keeps only its SHA-256, so a
copy of the database lets no one in. Each session has its own CSRF token, which every call that
changes something must carry besides the cookie (a form field or a header): another site can
make a browser send the cookie, never read the token. Sessions live in the database, so every
``serve`` worker of one database knows them, and a logout or a removed user ends them at once.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Field, SQLModel, col, select

from engine.db.records import timestamp
from engine.db.store import Store

from .clock import as_utc, utcnow
from .users import User, UserRecord, user_of

LIFETIME = timedelta(hours=12)


class SessionRecord(SQLModel, table=True):
    __tablename__ = "console_session"

    token_hash: str = Field(primary_key=True)
    user_id: int = Field(index=True)  # no foreign key: a removed user's sessions just fail
    csrf: str
    expires: datetime = timestamp(nullable=False)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    """``engine.sessions``: open, find and close console sessions."""

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
            session.add(
                SessionRecord(
                    token_hash=_digest(token), user_id=user.id, csrf=csrf, expires=now + LIFETIME
                )
            )
        return token, csrf

    def find(self, token: str) -> tuple[User, str] | None:
        """The session's user and CSRF token; None for an unknown, ended or expired one, or
        one whose user was removed."""
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
        return user_of(user), found.csrf

    def close(self, token: str) -> None:
        with self.store.write() as session:
            gone = delete(SessionRecord).where(col(SessionRecord.token_hash) == _digest(token))
            session.exec(gone)  # type: ignore[call-overload]
