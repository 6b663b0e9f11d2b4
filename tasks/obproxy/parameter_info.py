"""OBProxy parameter metadata (OCP's ``GET /api/v2/obproxy/parameterInfo``), from obproxy's
own source: ``parameter_info.json`` is what ``fixtures/obproxy_source/extract_parameters.py``
extracts from the ``oceanbase/obproxy`` repository (v4.3.1: its definitions of every
configuration item), so names, types, defaults, ranges and whether a change needs a restart are
obproxy's, not ours.

The table describes one obproxy release line. A ``version`` filter answers with it for a version
of the same major.minor (parameters change little within a line) and with nothing otherwise, as
an OCP that knows no metadata for that version would.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

_TABLE = Path(__file__).with_name("parameter_info.json")


@cache
def _entries() -> tuple[dict[str, Any], ...]:
    rows = json.loads(_TABLE.read_text())
    return tuple(
        {
            "id": i,
            "name": row["name"],
            "version": row["version"],
            "type": row["type"],
            "allowedStringValues": row.get("allowedStringValues"),
            "maxValue": row.get("maxValue"),
            "minValue": row.get("minValue"),
            "defaultValue": row.get("defaultValue"),
            "needRestart": bool(row.get("needRestart")),
            "readonly": bool(row.get("readonly")),
            "description": row.get("description"),
            "explanation": None,
        }
        for i, row in enumerate(sorted(rows, key=lambda r: r["name"]), start=1)
    )


def _line(version: str) -> tuple[str, ...]:
    return tuple(version.strip().split(".")[:2])


def parameter_info(name: str | None = None, version: str | None = None) -> list[dict[str, Any]]:
    """The metadata of every parameter (or the one named), for ``version``'s release line."""
    found = list(_entries())
    if name:
        found = [e for e in found if e["name"] == name.strip()]
    if version:
        found = [e for e in found if _line(e["version"]) == _line(version)]
    return found


def needs_restart(name: str) -> bool | None:
    """Whether changing ``name`` takes an obproxy restart; None for a name the table lacks."""
    rows = parameter_info(name)
    return rows[0]["needRestart"] if rows else None
