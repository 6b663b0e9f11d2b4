"""Secrets at rest: credentials are encrypted (Fernet) before they reach the database.

The key never lives in the database: it comes from ``$OCPTASK_SECRET_KEY`` (share it between
daemons on one PostgreSQL) or from a ``secret.key`` file created with mode 0600 beside the SQLite
database (or in ``~/.ocptask`` for other databases). Searching the database file for a password
finds nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from engine.errors import OcpTaskError

PREFIX = "fernet:"


class SecretError(OcpTaskError):
    """A stored secret cannot be decrypted with this key (wrong or rotated key)."""


class SecretBox:
    def __init__(self, key_file: Path) -> None:
        key = os.environ.get("OCPTASK_SECRET_KEY")
        if not key:
            key = self._key_from(key_file)
        try:
            self._fernet = Fernet(key.encode() if isinstance(key, str) else key)
        except ValueError:
            raise SecretError(
                "the secret key is not a Fernet key (32 url-safe base64-encoded bytes)"
            ) from None

    @staticmethod
    def _key_from(path: Path) -> str:
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = Fernet.generate_key().decode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key + "\n")
        return key

    def seal(self, secret: str | None) -> str | None:
        if secret is None:
            return None
        return PREFIX + self._fernet.encrypt(secret.encode()).decode()

    def open(self, stored: str | None) -> str | None:
        if stored is None:
            return None
        if not stored.startswith(PREFIX):
            raise SecretError("a stored secret is not encrypted; re-register it")
        try:
            return self._fernet.decrypt(stored[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise SecretError(
                "a stored secret cannot be decrypted: OCPTASK_SECRET_KEY or secret.key changed"
            ) from None
