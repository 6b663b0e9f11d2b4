"""Managing users as audit events: OCP's OCP_USER_MANAGEMENT events (CREATE_USER,
CHANGE_USER_PASSWORD, UPDATE_USER for a role granted or revoked, DELETE_USER) and ours for access
keys (CREATE_ACCESS_KEY, DELETE_ACCESS_KEY). Recorded by the functions every surface calls (the
command line is the only one: the HTTP API manages no users); an event keeps the user's name,
the roles and an access key's id, never a password or a secret. One call is one event: what it
does on the way (``add_user`` granting roles) is part of it (``engine.audit_calls.recorded``)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from engine.audit import Operation
from engine.audit_calls import Outcome, recorded
from engine.db.store import Store

EVENT_TYPE, RESOURCE_TYPE = "OCP_USER_MANAGEMENT", "OCP_USER"


def user_event(
    store: Store, event: str, name: str, info: dict[str, Any]
) -> AbstractContextManager[Outcome]:
    """The event of one user-management call on ``name`` (its ``resource_id`` the user's)."""
    return recorded(store, Operation(event, EVENT_TYPE, RESOURCE_TYPE), name, info)
