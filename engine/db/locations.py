"""Where the database is: an explicit URL or path, else ``$OCPTASK_DB``, else a per-user file.
Apart from the store so that a reader without SQLAlchemy (``sqlite_reader``) finds the same file."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_DB = "~/.ocptask/ocptask.db"


def resolve_url(db_url: str | None = None) -> str:
    """The database's URL; a SQLite file's folder is made if missing."""
    value = db_url or os.environ.get("OCPTASK_DB") or DEFAULT_DB
    if "://" in value:
        return value
    path = Path(value).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def sqlite_file(db_url: str | None = None) -> Path | None:
    """The SQLite file the database would be, without making anything; None for a server."""
    value = db_url or os.environ.get("OCPTASK_DB") or DEFAULT_DB
    if "://" not in value:
        return Path(value).expanduser()
    scheme, _, rest = value.partition(":///")
    if scheme in ("sqlite", "sqlite+pysqlite") and rest and not rest.startswith(":memory:"):
        return Path(rest.split("?", 1)[0])
    return None
