"""Turning pydantic's validation errors into our RequestInvalid, with OCP-style field paths."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from engine import FieldError, RequestInvalid

M = TypeVar("M", bound=BaseModel)


def field_path(loc: Sequence[int | str]) -> str:
    """``("obLinks", 1, "username")`` -> ``obLinks[1].username``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "(request)"


def parse(model: type[M], data: Any) -> M:
    """Validate ``data`` (decoded JSON) against ``model``; RequestInvalid names every bad field."""
    if not isinstance(data, dict):
        raise RequestInvalid(
            [FieldError("(request)", f"must be a JSON object, not {type(data).__name__}")]
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = []
        for err in exc.errors(include_url=False):
            errors.append(FieldError(field_path(err["loc"]), err["msg"], err.get("input")))
        raise RequestInvalid(errors) from None
