"""OBProxy server ids as a call names them: a JSON list, or OCP's comma-separated
``{obproxyIds}`` path segment; one reading of both, each refusal at its place."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine import FieldError, RequestInvalid
from engine.db.row_ids import is_row_id

from .request import MAX_HOSTS

ServerIds = Sequence[int] | str
"""OBProxy server ids: a list, or the comma-separated text of OCP's ``{obproxyIds}`` path."""


def server_ids_of(server_ids: ServerIds, field: str) -> list[int]:
    """Ids from a list or from OCP's comma-separated path segment, each a row id, no repeats."""
    where = "path" if isinstance(server_ids, str) else "body"
    if isinstance(server_ids, str):
        items: list[Any] = server_ids.split(",")
    elif isinstance(server_ids, (list, tuple)):
        items = list(server_ids)
    else:
        raise RequestInvalid(
            [FieldError(field, "must be a list of OBProxy ids", None, object=where)]
        )
    if len(items) > MAX_HOSTS:
        raise RequestInvalid(
            [FieldError(field, f"at most {MAX_HOSTS} OBProxies", len(items), object=where)]
        )
    ids, problems = [], []
    for i, item in enumerate(items):
        text = item.strip() if isinstance(item, str) else item
        if isinstance(text, str) and text.isascii() and text.isdigit() and len(text) <= 19:
            text = int(text)
        if isinstance(text, bool) or not isinstance(text, int) or not is_row_id(text):
            problems.append(
                FieldError(f"{field}[{i}]", "must be an OBProxy id", item, object=where)
            )
        elif text in ids:
            problems.append(FieldError(f"{field}[{i}]", f"duplicate id {text}", text, object=where))
        else:
            ids.append(text)
    if not items:
        problems.append(FieldError(field, "name at least one OBProxy", object=where))
    if problems:
        raise RequestInvalid(problems)
    return ids
