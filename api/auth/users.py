"""API users and their access keys: who may call ocptask's HTTP API, and as whom tasks are made.

Passwords are stored as scrypt hashes (hashlib, no extra dependency) with a per-user salt. An
access key's secret must be readable to check a request's HMAC, so it is sealed with the store's
secret box instead of hashed; it is shown once, when created. Verified passwords are remembered
in memory for a minute (keyed by the stored hash, so a changed or removed user is never let in
from that cache): scrypt is deliberately slow, and an HTTP client sends Basic on every call.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam
from sqlmodel import Field, SQLModel, col, select

from engine.clock import as_utc, ocp_time, utcnow
from engine.db.compiled import RowRead
from engine.db.records import timestamp
from engine.db.store import Store
from engine.errors import FieldError, NotFound, RequestInvalid, found

from .user_events import user_event
from .user_ids import USER_IDS

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.@-]{0,63}$")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "maxmem": 64 * 1024 * 1024, "dklen": 32}
_CACHE_SECONDS = 60.0
# At most two scrypt computations at once (16 MiB and ~60 ms of a core each): a flood of wrong
# passwords then queues here instead of taking every worker thread and all the memory.
_SCRYPT_SLOTS = threading.BoundedSemaphore(2)
_IDS_SECONDS = 1.0
_AK_ALPHABET = string.ascii_letters + string.digits


class UserNotFound(NotFound):
    what = "User"


class AccessKeyNotFound(NotFound):
    what = "Access key"


class UserRecord(SQLModel, table=True):
    __tablename__ = "api_user"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    password_hash: str
    create_time: datetime = timestamp(nullable=False)


_USERS = UserRecord.__table__  # type: ignore[attr-defined]
# Built once, with a bound parameter: every API request authenticates.
_USER_NAMED = _USERS.select().where(_USERS.c.name == bindparam("name"))


class AccessKeyRecord(SQLModel, table=True):
    __tablename__ = "api_access_key"

    access_key_id: str = Field(primary_key=True)
    user_id: int = Field(foreign_key="api_user.id", index=True)
    secret: str  # sealed
    create_time: datetime = timestamp(nullable=False)


@dataclass(frozen=True)
class User:
    id: int
    name: str
    create_time: datetime

    def to_ocp(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "createTime": ocp_time(self.create_time)}


@dataclass(frozen=True)
class AccessKey:
    access_key_id: str
    user: str
    create_time: datetime


def _hash(password: str, salt: bytes) -> str:
    with _SCRYPT_SLOTS:
        digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def _matches(password: str, stored: str) -> bool:
    try:
        scheme, salt, _ = stored.split("$")
    except ValueError:
        return False
    return scheme == "scrypt" and hmac.compare_digest(_hash(password, bytes.fromhex(salt)), stored)


def _check_name(name: object) -> list[FieldError]:
    if not isinstance(name, str) or not _NAME.match(name):
        return [
            FieldError(
                "name",
                "must start with a letter and hold at most 64 letters, digits or _.@-",
                name,
            )
        ]
    return []


class Users:
    """Add, list and remove API users; their access keys; authentication. The API keeps one
    (``app.state.users``): it remembers verified passwords and the users' ids."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.ensure_schema()
        self._verified: dict[tuple[str, bytes], float] = {}
        self._lock = threading.Lock()
        self._named = RowRead(store.engine, _USER_NAMED)
        self._ids: tuple[float, dict[str, int]] | None = None

    def add(self, name: str, password: str) -> User:
        """Create a user, or set the password of the existing one with that name."""
        problems = _check_name(name)
        if not isinstance(password, str) or len(password) < 8 or len(password) > 1024:
            problems.append(FieldError("password", "must be 8 to 1024 characters"))
        if problems:
            raise RequestInvalid(problems)
        stored = _hash(password, secrets.token_bytes(16))
        with self.store.write() as session:
            rec = session.exec(select(UserRecord).where(UserRecord.name == name)).first()
            if rec is None:
                rec = UserRecord(name=name, password_hash=stored, create_time=utcnow())
            rec.password_hash = stored
            session.add(rec)
            session.flush()
            self._ids = None
            return user_of(rec)

    def list(self) -> list[User]:
        with self.store.read() as session:
            query = select(UserRecord).order_by(col(UserRecord.id))
            return [user_of(r) for r in session.exec(query).all()]

    def get(self, name: str) -> User:
        with self.store.read() as session:
            rec = found(
                session.exec(select(UserRecord).where(UserRecord.name == name)).first(),
                UserNotFound,
                name,
            )
            return user_of(rec)

    def ids(self) -> dict[str, int]:
        """Name → id of every user (task records name their creator; OCP shows both).

        Remembered for a second (every task the API shows asks): a user added or removed by
        another process may show late by that much, except one who just authenticated here."""
        now = time.monotonic()
        cached = self._ids
        if cached is not None and cached[0] > now:
            return dict(cached[1])
        with self.store.engine.connect() as conn:
            ids = {n: i for n, i in conn.exec_driver_sql(USER_IDS)}
        self._ids = (now + _IDS_SECONDS, ids)
        return dict(ids)

    def remove(self, name: str) -> None:
        """Remove a user and every access key of theirs."""
        with user_event(self.store, "DELETE_USER", name, {"username": name}):
            self._remove(name)

    def _remove(self, name: str) -> None:
        with self.store.write() as session:
            rec = found(
                session.exec(select(UserRecord).where(UserRecord.name == name)).first(),
                UserNotFound,
                name,
            )
            keys = select(AccessKeyRecord).where(AccessKeyRecord.user_id == rec.id)
            for key in session.exec(keys).all():
                session.delete(key)
            session.flush()
            session.delete(rec)
        self._ids = None

    def verified(self, name: str, password: str) -> User | None:
        """The user if this password was verified for them within the last minute (and the
        user still has it); None when that is not known. Never hashes: fast enough to call on
        an event loop, for the API's every request."""
        rec = self._named.first(name=name)
        if rec is None:
            return None
        key = (rec.password_hash, hashlib.sha256(password.encode()).digest())
        with self._lock:
            until = self._verified.get(key)
        return user_of(rec) if until is not None and until >= time.monotonic() else None

    def authenticate(self, name: str, password: str) -> User | None:
        """The user, if ``password`` is theirs; None otherwise (unknown user included)."""
        with self.store.engine.connect() as conn:  # a row, not an ORM object: every request
            rec = conn.execute(_USER_NAMED, {"name": name}).first()
        if rec is None:
            _hash(password, b"\0" * 16)  # as slow as a wrong password: names are not probed
            return None
        key = (rec.password_hash, hashlib.sha256(password.encode()).digest())
        now = time.monotonic()
        with self._lock:
            until = self._verified.get(key)
        if until is None or until < now:
            if not _matches(password, rec.password_hash):
                return None
            with self._lock:
                if len(self._verified) > 10_000:
                    self._verified.clear()
                self._verified[key] = now + _CACHE_SECONDS
        cached = self._ids
        if cached is not None and cached[1].get(rec.name) != rec.id:
            self._ids = None  # a user new to (or re-created since) the remembered ids
        return user_of(rec)

    # -- access keys ------------------------------------------------------------------------

    def create_access_key(self, name: str) -> tuple[str, str]:
        """A new (AccessKeyId, AccessKeySecret) for the user. The secret is not shown again."""
        with user_event(self.store, "CREATE_ACCESS_KEY", name, {"username": name}):  # ours
            return self._create_access_key(name)

    def _create_access_key(self, name: str) -> tuple[str, str]:
        access_key_id = "".join(secrets.choice(_AK_ALPHABET) for _ in range(16))
        secret = secrets.token_hex(16)
        with self.store.write() as session:
            rec = found(
                session.exec(select(UserRecord).where(UserRecord.name == name)).first(),
                UserNotFound,
                name,
            )
            session.add(
                AccessKeyRecord(
                    access_key_id=access_key_id,
                    user_id=rec.id,  # type: ignore[arg-type]
                    secret=self.store.secrets.seal(secret),  # type: ignore[arg-type]
                    create_time=utcnow(),
                )
            )
        return access_key_id, secret

    def access_keys(self, name: str | None = None) -> list[AccessKey]:
        query = select(AccessKeyRecord, UserRecord.name).join(
            UserRecord, col(UserRecord.id) == col(AccessKeyRecord.user_id)
        )
        if name is not None:
            query = query.where(UserRecord.name == name)
        with self.store.read() as session:
            rows = session.exec(query.order_by(col(AccessKeyRecord.create_time))).all()
            return [
                AccessKey(k.access_key_id, user, as_utc(k.create_time))  # type: ignore[arg-type]
                for k, user in rows
            ]

    def remove_access_key(self, access_key_id: str) -> None:
        info = {"accessKeyId": access_key_id}
        with user_event(self.store, "DELETE_ACCESS_KEY", access_key_id, info):  # ours
            self._remove_access_key(access_key_id)

    def _remove_access_key(self, access_key_id: str) -> None:
        with self.store.write() as session:
            rec = found(
                session.get(AccessKeyRecord, access_key_id), AccessKeyNotFound, access_key_id
            )
            session.delete(rec)

    def access_key(self, access_key_id: str) -> tuple[User, str] | None:
        """The key's user and its secret, to check a signature; None for an unknown key."""
        with self.store.read() as session:
            row = session.exec(
                select(AccessKeyRecord, UserRecord)
                .join(UserRecord, col(UserRecord.id) == col(AccessKeyRecord.user_id))
                .where(AccessKeyRecord.access_key_id == access_key_id)
            ).first()
        if row is None:
            return None
        key, user = row
        return user_of(user), self.store.secrets.open(key.secret) or ""


def with_creator_id(record: dict[str, Any], ids: dict[str, int]) -> dict[str, Any]:
    """A record naming its creator (``creatorName``), with OCP's ``creatorId`` beside it: task
    packages record the name only; the users' ids are the API's."""
    return {**record, "creatorId": ids.get(record["creatorName"])}


def user_of(rec: Any) -> User:
    """From a UserRecord or a row of its table."""
    assert rec.id is not None
    return User(rec.id, rec.name, as_utc(rec.create_time))  # type: ignore[arg-type]
