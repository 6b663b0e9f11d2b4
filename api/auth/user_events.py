"""Managing users as audit events: OCP's OCP_USER_MANAGEMENT events (CREATE_USER,
CHANGE_USER_PASSWORD, UPDATE_USER for a role granted or revoked, DELETE_USER) and ours for access
keys (CREATE_ACCESS_KEY, DELETE_ACCESS_KEY). Recorded by the functions every surface calls (the
command line is the only one: the HTTP API manages no users); an event keeps the user's name,
the roles and an access key's id, never a password or a secret. One call is one event: what it
does on the way (``add_user`` granting roles) is part of it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from engine.audit import FAILED, SUCCESS, AuditEvents, Operation, Resource
from engine.clock import utcnow
from engine.db.store import Store

log = logging.getLogger("ocptask.audit")

EVENT_TYPE, RESOURCE_TYPE = "OCP_USER_MANAGEMENT", "OCP_USER"
_inside: ContextVar[bool] = ContextVar("ocptask_user_event", default=False)


class Outcome:
    """What the call tells its event once it knows: the user's id."""

    user_id: int | None = None


@contextmanager
def user_event(store: Store, event: str, name: str, info: dict[str, Any]) -> Iterator[Outcome]:
    """One event for the call inside: SUCCESS, or FAILED when it refused (re-raised)."""
    outcome = Outcome()
    if _inside.get():
        yield outcome
        return
    token, start = _inside.set(True), utcnow()
    status = FAILED
    try:
        yield outcome
        status = SUCCESS
    finally:
        _inside.reset(token)
        operation = Operation(event, EVENT_TYPE, RESOURCE_TYPE)
        resource = Resource(outcome.user_id, name)
        try:  # the change happened (or was refused): a failed write must not hide that
            store.ensure_schema()
            AuditEvents(store).record(
                operation, status=status, resource=resource, info=info, start_time=start
            )
        except Exception:
            log.exception("audit event %s (%s) could not be written", event, status)
