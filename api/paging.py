"""OCP's paging and sorting query: ``page`` (1-based), ``size`` (≤ 2000), ``sort=field,asc``.

OCP binds these through Spring Data's ``PageableHandlerMethodArgumentResolver`` (one-indexed
pages, a maximum page size of 2000), which clamps instead of refusing: ``size`` above the maximum
is the maximum, ``size`` below 1 is the default 10, ``page`` below 1 is the first page. ocptask
clamps the same way, and the answer's ``page`` says what was served. Where Spring silently takes
the default for a value that is not a number at all (``size=ten``), ocptask refuses it with a field
error: nothing a client meant can be served from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Query

from engine import FieldError, RequestInvalid

MAX_SIZE = 2000
DEFAULT_SIZE = 10
UNSORTABLE = 10011  # OCP's COM10011: "The {0} field cannot be used for sorting."


class SortRefused(RequestInvalid):
    """``sort`` names a field the list cannot be ordered by (or a bad direction)."""

    code = UNSORTABLE


@dataclass(frozen=True)
class Paging:
    page: int
    size: int
    sort: tuple[str, ...]

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    def order(self, allowed: dict[str, str], default: str = "id") -> tuple[str, bool]:
        """(column, descending) for ``sort``: ``FIELD``, ``FIELD,asc`` or ``FIELD,desc`` with a
        field of ``allowed`` (OCP's names → ours); anything else is refused the same way on every
        list. Without ``sort`` a list is newest first, as OCP's are."""
        if not self.sort:
            return allowed[default], True
        if len(self.sort) > 1 or self.sort[0].count(",") > 1:
            raise _refused(self.sort, allowed, "one sort field at a time")
        field, _, direction = self.sort[0].partition(",")
        field, direction = field.strip(), direction.strip().lower() or "asc"
        if field not in allowed or direction not in ("asc", "desc"):
            raise _refused(self.sort, allowed, f"the {field or '(empty)'} field cannot be used")
        return allowed[field], direction == "desc"


def _refused(sort: tuple[str, ...], allowed: dict[str, str], why: str) -> SortRefused:
    fields = ", ".join(allowed)
    message = f"{why}: sort by FIELD, FIELD,asc or FIELD,desc with FIELD one of {fields}"
    return SortRefused([FieldError("sort", message, "&".join(sort))])


def _number(name: str, value: str | None, default: int) -> int:
    if value is None or not value.strip():
        return default
    try:
        return int(value.strip())
    except ValueError:
        raise RequestInvalid([FieldError(name, "must be a whole number", value)]) from None


def paging(
    page: Annotated[
        str | None, Query(max_length=20, description="1-based page number (below 1: the first)")
    ] = None,
    size: Annotated[
        str | None, Query(max_length=20, description=f"page size, at most {MAX_SIZE} (capped)")
    ] = None,
    sort: Annotated[
        list[str] | None, Query(max_length=64, description="FIELD,asc or FIELD,desc")
    ] = None,
) -> Paging:
    number = min(max(_number("page", page, 1), 1), 2**31 - 1)
    wanted = _number("size", size, DEFAULT_SIZE)
    per_page = DEFAULT_SIZE if wanted < 1 else min(wanted, MAX_SIZE)
    return Paging(number, per_page, tuple(s for s in sort or () if s.strip()))
