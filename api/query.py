"""Query parameters bound as OCP's Spring MVC binds them.

Spring binds a list parameter from repeated keys and from comma-separated values alike
(``status=RUNNING&status=FAILED`` is ``status=RUNNING,FAILED``), so a list filter is declared
``Listed`` and read through ``listed``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

Listed = Annotated[
    list[str] | None,
    Query(description="repeated keys or comma-separated values, as OCP binds them"),
]


def listed(values: list[str] | None) -> list[str]:
    """Every value of a list parameter, whichever way it was sent; blanks dropped."""
    return [v.strip() for item in values or () for v in item.split(",") if v.strip()]
