"""Who may do what: OCP's permissions per call, the built-in roles that grant them, and the one
check every route makes (``permitted``, in the API's ``secured`` dependencies; the console's
pages make the same through ``check``).

OCP's reference names a permission on most calls' pages ("You have the TASK_MANAGER
permissions"): TASK_VIEWER/TASK_MANAGER on the task calls, HOST_VIEWER/HOST_MANAGER on the host
module, CLUSTER_VIEWER on the OceanBase cluster list, AUDIT_VIEWER on the audit events. Its
OBProxy pages say only "authenticated"; for those ocptask takes the names of OCP's default roles
over OBProxy clusters, OBPROXY_VIEWER and OBPROXY_MANAGER (ours, as are CLUSTER_MANAGER for
registering an OceanBase cluster and USER_MANAGER for users and access keys). A permission
missing is OCP's COM10009, "Cannot access the specified resource: permission denied" (403).

Every route that needs a caller has a row in ``ROUTES``, keyed by its method and its path as
FastAPI declares it; a route without one is refused (a test checks that none lacks one).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from engine import OcpTaskError

from .caller import authenticated
from .roles import ADMIN, AUDITOR, OPERATOR, VIEWER, Roles
from .users import User

TASK_VIEWER, TASK_MANAGER = "TASK_VIEWER", "TASK_MANAGER"
HOST_VIEWER, HOST_MANAGER = "HOST_VIEWER", "HOST_MANAGER"
OBPROXY_VIEWER, OBPROXY_MANAGER = "OBPROXY_VIEWER", "OBPROXY_MANAGER"
CLUSTER_VIEWER, CLUSTER_MANAGER = "CLUSTER_VIEWER", "CLUSTER_MANAGER"
AUDIT_VIEWER, USER_MANAGER = "AUDIT_VIEWER", "USER_MANAGER"

VIEWS = frozenset({TASK_VIEWER, HOST_VIEWER, OBPROXY_VIEWER, CLUSTER_VIEWER})
MANAGES = frozenset({TASK_MANAGER, HOST_MANAGER, OBPROXY_MANAGER, CLUSTER_MANAGER})
PERMISSIONS = VIEWS | MANAGES | {AUDIT_VIEWER, USER_MANAGER}
GRANTS: dict[str, frozenset[str]] = {
    ADMIN: PERMISSIONS,
    OPERATOR: VIEWS | MANAGES,
    VIEWER: VIEWS,
    AUDITOR: VIEWS | {AUDIT_VIEWER},
}

ANY_USER = None  # a route any authenticated user may call (the console's home redirect)
_TASK = "/api/v2/tasks/instances/{taskId}"
_SUBTASK = _TASK + "/subtasks/{subtaskId}"
_CLUSTER = "/api/v2/obproxy/clusters/{id}"
_PROXIES = _CLUSTER + "/obproxies/{obproxyIds}"

# (method, path template) → (the permission, what it lets the caller do: for the refusal).
ROUTES: dict[tuple[str, str], tuple[str | None, str]] = {
    # OCP's task management (1100.task-management)
    ("GET", "/api/v2/tasks/instances"): (TASK_VIEWER, "list tasks"),
    ("GET", _TASK): (TASK_VIEWER, "read a task"),
    ("POST", _TASK + "/retry"): (TASK_MANAGER, "retry a task"),
    ("POST", _TASK + "/rollback"): (TASK_MANAGER, "roll back a task"),
    ("GET", _SUBTASK + "/log"): (TASK_VIEWER, "read a subtask's log"),
    ("POST", _SUBTASK + "/retry"): (TASK_MANAGER, "retry a subtask"),
    ("POST", _SUBTASK + "/skip"): (TASK_MANAGER, "skip a subtask"),
    ("POST", _SUBTASK + "/cancel"): (TASK_MANAGER, "cancel a subtask"),
    # OBProxy management (800.obproxy-management: "authenticated"; the names are OCP's roles')
    ("GET", "/api/v2/obproxy/clusters"): (OBPROXY_VIEWER, "list OBProxy clusters"),
    ("POST", "/api/v2/obproxy/clusters"): (OBPROXY_MANAGER, "create an OBProxy cluster"),
    ("GET", _CLUSTER): (OBPROXY_VIEWER, "read an OBProxy cluster"),
    ("GET", _CLUSTER + "/parameters"): (OBPROXY_VIEWER, "read an OBProxy cluster's parameters"),
    ("PATCH", _CLUSTER): (OBPROXY_MANAGER, "change an OBProxy cluster"),
    ("DELETE", _CLUSTER): (OBPROXY_MANAGER, "delete an OBProxy cluster"),
    ("POST", _CLUSTER + "/obLinks/batchAdd"): (OBPROXY_MANAGER, "link OceanBase clusters"),
    ("DELETE", _CLUSTER + "/obLinks/{obClusterName}"): (
        OBPROXY_MANAGER,
        "unlink an OceanBase cluster",
    ),
    ("POST", _CLUSTER + "/obproxies/batchAdd"): (OBPROXY_MANAGER, "add OBProxies"),
    ("POST", _CLUSTER + "/takeOver"): (OBPROXY_MANAGER, "take over OBProxies"),
    ("DELETE", _PROXIES): (OBPROXY_MANAGER, "delete OBProxies"),
    ("POST", _PROXIES + "/restart"): (OBPROXY_MANAGER, "restart OBProxies"),
    ("POST", _PROXIES + "/upgrade"): (OBPROXY_MANAGER, "upgrade OBProxies"),
    ("POST", _CLUSTER + "/servers/delete"): (OBPROXY_MANAGER, "delete OBProxies"),
    ("POST", _CLUSTER + "/servers/stop"): (OBPROXY_MANAGER, "stop OBProxies"),
    ("POST", _CLUSTER + "/servers/start"): (OBPROXY_MANAGER, "start OBProxies"),
    ("GET", "/api/v2/obproxy/parameterInfo"): (OBPROXY_VIEWER, "read OBProxy parameter metadata"),
    # OCP's host module (600.host-module)
    ("GET", "/api/v2/compute/hosts"): (HOST_VIEWER, "list hosts"),
    ("GET", "/api/v2/compute/hosts/{hostId}"): (HOST_VIEWER, "read a host"),
    ("POST", "/api/v2/compute/hosts/batchCreate"): (HOST_MANAGER, "add hosts"),
    ("POST", "/api/v2/compute/hosts/batchDelete"): (HOST_MANAGER, "remove hosts"),
    ("DELETE", "/api/v2/compute/hosts/{hostId}"): (HOST_MANAGER, "remove a host"),
    # OceanBase clusters (450.cluster-information: CLUSTER_VIEWER)
    ("GET", "/api/v2/ob/clusters"): (CLUSTER_VIEWER, "list OceanBase clusters"),
    ("GET", "/api/v2/ob/clusters/{id}"): (CLUSTER_VIEWER, "read an OceanBase cluster"),
    # OCP's historical events (1200.ocp-historical-events: AUDIT_VIEWER)
    ("GET", "/api/v2/audit/events"): (AUDIT_VIEWER, "read audit events"),
    # The web console's pages (their changes go through the API's routes above, but one)
    ("GET", "/"): (ANY_USER, "open the console"),
    ("GET", "/tasks"): (TASK_VIEWER, "list tasks"),
    ("GET", "/tasks/{taskId}"): (TASK_VIEWER, "read a task"),
    ("GET", "/tasks/{taskId}/state"): (TASK_VIEWER, "read a task"),
    ("GET", "/tasks/{taskId}/dag.svg"): (TASK_VIEWER, "read a task"),
    ("GET", "/obproxy"): (OBPROXY_VIEWER, "list OBProxy clusters"),
    ("GET", "/obproxy/new"): (OBPROXY_MANAGER, "create an OBProxy cluster"),
    ("GET", "/obproxy/{id}"): (OBPROXY_VIEWER, "read an OBProxy cluster"),
    ("GET", "/hosts"): (HOST_VIEWER, "list hosts"),
    ("GET", "/obclusters"): (CLUSTER_VIEWER, "list OceanBase clusters"),
    ("POST", "/obclusters"): (CLUSTER_MANAGER, "register an OceanBase cluster"),
    ("GET", "/audit"): (AUDIT_VIEWER, "read audit events"),
}


class PermissionDenied(OcpTaskError):
    """The caller lacks the permission a call needs: OCP's COM10009, HTTP 403. The message
    names the permission, the call and the caller's roles."""

    code = 10009


def permissions_of(roles: frozenset[str]) -> frozenset[str]:
    """Everything the roles grant together."""
    return frozenset().union(*(GRANTS.get(r, frozenset()) for r in roles))


def check(request: Request, user: User, method: str, path: str) -> frozenset[str]:
    """Refuse ``user`` the call ``method path`` (a route's template) unless a role of theirs
    grants its permission; the user's permissions otherwise (also kept on ``request.state``,
    for the pages to show only what the user may do)."""
    roles: Roles = request.app.state.roles
    held = roles.of(user.id)
    granted = permissions_of(held)
    request.state.permissions = granted
    entry = ROUTES.get((method, path))
    if entry is None:  # a route nobody gave a permission: refused, never open by mistake
        raise PermissionDenied(f"permission denied: no permission is declared for {method} {path}")
    needed, what = entry
    if needed is not None and needed not in granted:
        has = f"has roles {', '.join(sorted(held))}" if held else "has no role"
        raise PermissionDenied(
            f"permission denied: {needed} is needed to {what}; user {user.name!r} {has}"
        )
    return granted


async def permitted(request: Request, user: Annotated[User, Depends(authenticated)]) -> None:
    """The API's check, after ``authenticated`` (FastAPI runs that once per request)."""
    route = request.scope.get("route")
    path = getattr(route, "path", request.url.path)
    check(request, user, request.method, path)
