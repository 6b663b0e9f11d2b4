"""OCP's paging and sorting query: ``page`` (1-based), ``size`` (≤ 2000), ``sort=field,asc``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Query

from engine import FieldError, RequestInvalid

MAX_SIZE = 2000


@dataclass(frozen=True)
class Paging:
    page: int
    size: int
    sort: str | None

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    def order(self, allowed: dict[str, str], default: str = "id") -> tuple[str, bool]:
        """(column, descending) for ``sort``; an unknown field is a field error naming it."""
        if not self.sort:
            return allowed[default], True
        field, _, direction = self.sort.partition(",")
        direction = direction.strip().lower() or "asc"
        if field.strip() not in allowed or direction not in ("asc", "desc"):
            raise RequestInvalid(
                [
                    FieldError(
                        "sort",
                        f"must be FIELD,asc or FIELD,desc with FIELD one of {', '.join(allowed)}",
                        self.sort,
                    )
                ]
            )
        return allowed[field.strip()], direction == "desc"


def paging(
    page: Annotated[int, Query(ge=1, le=2**31 - 1, description="1-based page number")] = 1,
    size: Annotated[int, Query(ge=1, le=MAX_SIZE, description="page size")] = 10,
    sort: Annotated[str | None, Query(max_length=64, description="field,asc|desc")] = None,
) -> Paging:
    return Paging(page, size, sort)
