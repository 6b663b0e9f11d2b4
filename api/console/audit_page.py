"""The console's audit page: the events ``GET /api/v2/audit/events`` lists (who changed what,
from where, with what result), newest first, read through the same ``AuditEvents``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from engine.audit import FAILED, SUCCESS, AuditEvents, EventFilter

from .render import LoggedIn, engine_of, page, page_permitted

PAGE_SIZES = (50, 100, 200, 500)
router = APIRouter(include_in_schema=False, dependencies=[Depends(page_permitted)])


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    session: LoggedIn,
    status: Annotated[str | None, Query(max_length=16)] = None,
    size: Annotated[int, Query(ge=1, le=max(PAGE_SIZES))] = 100,
) -> Response:
    wanted = status if status in (SUCCESS, FAILED) else None
    events, total = AuditEvents(engine_of(request).store).page(
        EventFilter(status=wanted), limit=size
    )
    return page(
        request, "audit.html", session, events=events, total=total, status=wanted or "",
        size=size, sizes=PAGE_SIZES,
    )  # fmt: skip
