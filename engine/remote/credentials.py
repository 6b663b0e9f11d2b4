"""The SSH credential registry: what OCP's ``credentialId`` names when hosts are created.

A credential is a login user with either a private key file or a password. The password is
sealed at rest (``store.secrets``) and never leaves this module except through ``login()``,
which hands it to the host registry when a host is registered with the credential; a
``Credential`` snapshot never carries it.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel, col, select

from engine.clock import as_utc, ocp_time, utcnow
from engine.db.records import timestamp
from engine.db.row_ids import is_row_id
from engine.db.store import Store
from engine.errors import CredentialNotFound, FieldError, RequestInvalid, found

from .host_entries import USERNAME

MAX_NAME = 64
MAX_PATH = 4096
MAX_PASSWORD = 128


class SshCredentialRecord(SQLModel, table=True):
    __tablename__ = "ssh_credential"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    username: str
    private_key_path: str | None = None
    password: str | None = None  # sealed
    create_time: datetime = timestamp(nullable=False)


@dataclass(frozen=True)
class Credential:
    """A registered credential, without its secret."""

    id: int
    name: str
    username: str
    private_key_path: str | None
    create_time: datetime

    @property
    def auth_type(self) -> str:
        """``PRIVATE_KEY`` or ``PASSWORD`` (OCP's credential auth types)."""
        return "PRIVATE_KEY" if self.private_key_path else "PASSWORD"

    def to_ocp(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "username": self.username,
            "authType": self.auth_type,
            "privateKeyPath": self.private_key_path,
            "createTime": ocp_time(self.create_time),
        }


def _visible_text(value: object, max_length: int) -> bool:
    return (
        isinstance(value, str)
        and 1 <= len(value) <= max_length
        and value.strip() == value
        and not any(unicodedata.category(c)[0] in "C" or c in "\u2028\u2029" for c in value)
    )


def _check(
    name: object, username: object, private_key_path: object, password: object
) -> list[FieldError]:
    problems = []
    if not _visible_text(name, MAX_NAME):
        problems.append(
            FieldError(
                "name",
                f"must be 1-{MAX_NAME} characters, no control characters or surrounding spaces",
                name,
            )
        )
    if not isinstance(username, str) or not USERNAME.match(username):
        problems.append(FieldError("username", "must be a valid login name", username))
    if (private_key_path is None) == (password is None):
        problems.append(
            FieldError("privateKeyPath", "give exactly one of privateKeyPath and password")
        )
    if private_key_path is not None and (
        not _visible_text(private_key_path, MAX_PATH) or not private_key_path.startswith("/")  # type: ignore[union-attr]
    ):
        problems.append(FieldError("privateKeyPath", "must be an absolute path", private_key_path))
    if password is not None and (
        not isinstance(password, str)
        or not 1 <= len(password) <= MAX_PASSWORD
        or any(unicodedata.category(c) == "Cc" for c in password)
    ):
        problems.append(
            FieldError(
                "password", f"must be 1 to {MAX_PASSWORD} characters without control characters"
            )
        )
    return problems


class Credentials:
    """``engine.credentials``: add, list, get and remove SSH credentials."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.ensure_schema()

    def add(
        self,
        name: str,
        username: str,
        *,
        private_key_path: str | None = None,
        password: str | None = None,
    ) -> Credential:
        """Register a credential; exactly one of ``private_key_path`` and ``password``."""
        problems = _check(name, username, private_key_path, password)
        if problems:
            raise RequestInvalid(problems)
        taken = FieldError("name", f"a credential named {name!r} already exists", name)
        with self.store.read() as session:
            query = select(SshCredentialRecord.id).where(SshCredentialRecord.name == name)
            if session.exec(query).first() is not None:
                raise RequestInvalid([taken])
        rec = SshCredentialRecord(
            name=name,
            username=username,
            private_key_path=private_key_path,
            password=self.store.secrets.seal(password),
            create_time=utcnow(),
        )
        try:
            with self.store.write() as session:
                session.add(rec)
                session.flush()
                return _credential(rec)
        except IntegrityError:  # added by someone else since the look above
            raise RequestInvalid([taken]) from None

    def list(self) -> list[Credential]:
        with self.store.read() as session:
            query = select(SshCredentialRecord).order_by(col(SshCredentialRecord.id))
            return [_credential(r) for r in session.exec(query).all()]

    def find(self, credential_id: int) -> Credential | None:
        if not is_row_id(credential_id):
            return None
        with self.store.read() as session:
            rec = session.get(SshCredentialRecord, credential_id)
            return None if rec is None else _credential(rec)

    def get(self, credential_id: int) -> Credential:
        return found(self.find(credential_id), CredentialNotFound, credential_id)

    def remove(self, credential_id: int) -> None:
        """Forget it. Hosts registered with it keep their own copy and still work."""
        with self.store.write() as session:
            rec = found(
                session.get(SshCredentialRecord, credential_id), CredentialNotFound, credential_id
            )
            session.delete(rec)

    def login(self, credential_id: int) -> dict[str, Any]:
        """The host-registry fields for it (``username`` and ``privateKeyPath`` or
        ``password``), secret included: for ``engine.hosts.add``, not for display."""
        with self.store.read() as session:
            rec = found(
                session.get(SshCredentialRecord, credential_id), CredentialNotFound, credential_id
            )
            if rec.private_key_path:
                return {"username": rec.username, "privateKeyPath": rec.private_key_path}
            return {"username": rec.username, "password": self.store.secrets.open(rec.password)}


def _credential(rec: SshCredentialRecord) -> Credential:
    assert rec.id is not None
    return Credential(
        rec.id,
        rec.name,
        rec.username,
        rec.private_key_path,
        as_utc(rec.create_time),  # type: ignore[arg-type]
    )
