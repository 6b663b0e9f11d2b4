"""Where the database is: an explicit URL or path, else ``$OCPTASK_DB``, else a per-user file.
Apart from the store so that a reader without SQLAlchemy (``sqlite_reader``) finds the same file."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_DB = "~/.ocptask/ocptask.db"


def resolve_url(db_url: str | None = None) -> str:
    """The database's URL; a SQLite file's folder (0700) and the file itself (0600) are made if
    missing. The file holds password hashes, sealed secrets and console tokens: only its owner
    reads it; SQLite gives its -wal and -shm files the database file's mode."""
    value = db_url or os.environ.get("OCPTASK_DB") or DEFAULT_DB
    if "://" in value:
        path = sqlite_file(value)
        if path is not None and path.parent.is_dir() and not path.exists():
            _made(path)
        return value
    path = Path(value).expanduser().resolve()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        _made(path)
    return f"sqlite:///{path}"


def _made(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))  # an empty file: a new database


def sqlite_file(db_url: str | None = None) -> Path | None:
    """The SQLite file the database would be, without making anything; None for a server."""
    value = db_url or os.environ.get("OCPTASK_DB") or DEFAULT_DB
    if "://" not in value:
        return Path(value).expanduser()
    scheme, _, rest = value.partition(":///")
    if scheme in ("sqlite", "sqlite+pysqlite") and rest and not rest.startswith(":memory:"):
        return Path(rest.split("?", 1)[0])
    return None
