"""Query parameters bound as OCP's Spring MVC binds them.

Spring binds a list parameter from repeated keys and from comma-separated values alike
(``status=RUNNING&status=FAILED`` is ``status=RUNNING,FAILED``), so a list filter is declared
``Listed`` and read through ``listed``. A parameter a call does not take is refused, never
dropped (``known_parameters``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from engine import FieldError, RequestInvalid
from engine.text import VALUE_FORBIDDEN, first_forbidden

Listed = Annotated[
    list[str] | None,
    Query(description="repeated keys or comma-separated values, as OCP binds them"),
]


def listed(values: list[str] | None) -> list[str]:
    """Every value of a list parameter, whichever way it was sent; blanks dropped."""
    return [v.strip() for item in values or () for v in item.split(",") if v.strip()]


def _names(dependant: Dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _names(sub)
    return names


async def known_parameters(request: Request) -> None:
    """Refuse a query parameter the call does not take: OCP ignores none of its documented ones,
    and a misspelt one (``stauts=FAILED``) silently dropped would answer with everything."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    names: frozenset[str] | None = getattr(route, "_ocptask_parameters", None)
    if names is None:  # worked out once per route, kept on it
        names = frozenset(_names(route.dependant))
        route._ocptask_parameters = names  # type: ignore[attr-defined]
    refuse_unknown(request, names)


def refuse_unknown(request: Request, names: frozenset[str]) -> None:
    """The refusal itself, for routes that are not FastAPI's (the lean task detail); also of a
    value no filter can mean (a NUL, a control or invisible format character: ``name=%00``
    would otherwise match, or fail, as the backend pleases)."""
    for key, value in request.query_params.multi_items():
        problem = first_forbidden(value, VALUE_FORBIDDEN)
        if problem:
            raise RequestInvalid([FieldError(key, problem, None, "query")])
    unknown = [key for key in request.query_params if key not in names]
    if unknown:
        accepted = ", ".join(sorted(names)) or "none"
        raise RequestInvalid(
            [
                FieldError(
                    key,
                    f"is not a parameter of this call (it takes: {accepted})",
                    request.query_params[key],
                    "query",
                )
                for key in dict.fromkeys(unknown)
            ]
        )
