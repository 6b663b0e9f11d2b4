"""Permissions as OCP names them, granted by the built-in roles, checked on every route: a real
``ocptask serve`` called over HTTP (Basic, AK/SK, a console session) and the CLI (``--db`` and
``--server``). No sandbox host: a task fails on a host whose SSH port nothing listens on."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from api.app import create_app
from api.auth import permissions as p
from api.auth.roles import ADMIN, AUDITOR, OPERATOR, VIEWER, LastAdministrator, Roles
from api.auth.signer import OcpSigner
from api.auth.users import Users
from engine import Engine
from fixtures import install_request, register_ob_cluster, sample_request
from tests.api_helpers import error_of, run_cli, wait_task
from tests.conftest import ApiEnv
from tests.test_cli_remote import ocptask, one_line

# Routes anyone may call: the login form, and the config server OBProxies and observers call.
OPEN = {
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("GET", "/services"),
    ("POST", "/services"),
    ("DELETE", "/services"),
    ("GET", "/openapi.json"),
    ("HEAD", "/openapi.json"),
}
CHANGES = {"POST", "PATCH", "PUT", "DELETE"}
BACKENDS = ["sqlite", "postgres"]  # the tests of the ``engine`` fixture
PASSWORDS = {VIEWER: "viewer-Passw0rd", OPERATOR: "operator-Passw0rd", AUDITOR: "auditor-Pw0rd"}


def _routes(app: Any) -> Iterator[tuple[str, str]]:
    """(method, path template) of every route the app serves, as the permission check sees it
    (a FastAPI route's own path; a plain route's without its converters)."""
    stack = list(app.routes)
    while stack:
        route = stack.pop()
        if hasattr(route, "effective_route_contexts"):  # an included router (FastAPI ≥ 0.16x)
            stack.extend(c.original_route for c in route.effective_route_contexts())
        elif hasattr(route, "original_router"):
            stack.extend(route.original_router.routes)
        elif isinstance(route, Route):
            path = re.sub(r":\w+}", "}", route.path)
            for method in sorted(route.methods or ()):
                yield method, path


def test_every_route_has_a_permission(tmp_path: Path) -> None:
    """Routes → table: a new route without a row fails here (and is refused when called)."""
    with Engine(str(tmp_path / "x.db")) as engine:
        served = set(_routes(create_app(engine)))
    assert ("POST", "/api/v2/tasks/instances/{taskId}/retry") in served  # the walk finds them
    assert ("GET", "/obproxy/new") in served
    missing = sorted(r for r in served - OPEN if r not in p.ROUTES)
    assert missing == []
    # OCP's own names where its reference gives one; the audit events' row before the route.
    assert p.ROUTES[("GET", "/api/v2/tasks/instances")][0] == "TASK_VIEWER"
    assert p.ROUTES[("POST", "/api/v2/tasks/instances/{taskId}/rollback")][0] == "TASK_MANAGER"
    assert p.ROUTES[("POST", "/api/v2/compute/hosts/batchCreate")][0] == "HOST_MANAGER"
    assert p.ROUTES[("GET", "/api/v2/ob/clusters")][0] == "CLUSTER_VIEWER"
    assert p.ROUTES[("GET", "/api/v2/audit/events")][0] == "AUDIT_VIEWER"
    assert "AUDIT_VIEWER" in p.GRANTS[AUDITOR] and "AUDIT_VIEWER" in p.GRANTS[ADMIN]
    assert "AUDIT_VIEWER" not in p.GRANTS[VIEWER] | p.GRANTS[OPERATOR]
    assert "USER_MANAGER" not in p.GRANTS[OPERATOR] and "USER_MANAGER" in p.GRANTS[ADMIN]


def test_users_of_a_database_made_before_roles_become_admins(tmp_path: Path) -> None:
    db = str(tmp_path / "old.db")
    with Engine(db) as engine:  # users as the previous code made them: no role table at all
        Users(engine.store).add("first", "first-Passw0rd")
        Users(engine.store).add("second", "second-Passw0rd")
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE api_user_role")
    listed = run_cli(db, "user", "list")
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"first\s*│\s*ADMIN\s", listed.stdout), listed.stdout
    assert re.search(r"second\s*│\s*ADMIN\s", listed.stdout), listed.stdout
    # Once anyone holds a role, a user added without --role is a viewer.
    added = run_cli(db, "user", "add", "third", "--password-stdin", stdin="third-Passw0rd\n")
    assert added.returncode == 0 and "(VIEWER)" in added.stdout, added.stderr
    with Engine(db) as engine:  # opened again: nobody else becomes an administrator
        roles, users = Roles(engine.store), Users(engine.store)
        assert roles.of(users.get("third").id) == {VIEWER}


def test_roles_from_the_cli(tmp_path: Path) -> None:
    db = str(tmp_path / "new.db")

    def add(name: str, *roles: str) -> Any:
        flags = [a for r in roles for a in ("--role", r)]
        return run_cli(db, "user", "add", name, *flags, "--password-stdin", stdin="a-Passw0rd-1\n")

    assert "(ADMIN)" in add("boss").stdout  # the first user
    assert "(VIEWER)" in add("watcher").stdout
    assert "(AUDITOR, OPERATOR)" in add("ops", "operator", "AUDITOR").stdout
    unknown = add("x", "ROOT")
    assert unknown.returncode == 2 and "no such role" in unknown.stderr
    assert "x " not in run_cli(db, "user", "list").stdout  # refused before anything was written
    last = run_cli(db, "user", "revoke", "boss", "ADMIN")
    assert last.returncode == 2 and "boss is the last ADMIN" in last.stderr
    gone = run_cli(db, "user", "remove", "boss")
    assert gone.returncode == 2 and "boss is the last ADMIN" in gone.stderr
    granted = run_cli(db, "user", "grant", "watcher", "admin")
    assert granted.returncode == 0 and "watcher: ADMIN, VIEWER" in granted.stdout
    revoked = run_cli(db, "user", "revoke", "boss", "ADMIN")
    assert revoked.returncode == 0 and "boss: no role" in revoked.stdout
    assert run_cli(db, "user", "remove", "ops").returncode == 0  # its roles go with it
    with Engine(db) as engine:
        by_user = Roles(engine.store).by_user()
        names = {u.id: u.name for u in Users(engine.store).list()}
        assert {names[i]: r for i, r in by_user.items()} == {"watcher": ["ADMIN", "VIEWER"]}


def test_the_role_rules_on_each_backend(engine: Engine) -> None:
    users = Users(engine.store)
    users.add("old", "old-Passw0rd")  # as before roles: no row of hers
    roles = Roles(engine.store)
    old = users.get("old")
    assert roles.of(old.id) == {ADMIN}  # adopted when the store was opened with roles
    new = roles.add_user(users, "new", "new-Passw0rd")
    assert roles.of(new.id) == {VIEWER}
    assert roles.grant(new, ["operator", "VIEWER"]) == [OPERATOR, VIEWER]
    with pytest.raises(LastAdministrator):
        roles.revoke(old, [ADMIN])
    with pytest.raises(LastAdministrator):
        roles.check_removable(old)
    roles.grant(new, [ADMIN])
    assert roles.revoke(old, [ADMIN]) == []
    users.remove("new")  # the database removes her roles with her
    assert roles.by_user() == {}
    # No role left anywhere is what a database from before roles looks like: opened again,
    # its users are adopted (the last ADMIN rule keeps this from happening through the CLI).
    Roles(engine.store)
    assert roles.of(old.id) == {ADMIN}


@pytest.fixture
def site(api_env: ApiEnv) -> dict[str, Any]:
    """Users of each role (and a viewer's access key), and one of everything to read: a FAILED
    task (its host's SSH port is closed), its cluster, a host, an OceanBase cluster."""
    engine = api_env.engine
    roles, users = Roles(engine.store), Users(engine.store)
    for role, password in PASSWORDS.items():
        roles.add_user(users, role.lower(), password, [role])
    key, secret = users.create_access_key("viewer")
    users.add("nobody", "nobody-Passw0rd")  # by Users alone, once roles exist: none of them
    register_ob_cluster(engine, "proxyro-Secret-4711")
    engine.credentials.add("dead", "admin", private_key_path="/nonexistent/id_ed25519")
    host = engine.hosts.add(
        {
            "name": "dead",
            "innerIpAddress": "127.0.0.1",
            "sshPort": 1,  # nothing listens: the first SSH contact fails at once
            "username": "admin",
            "privateKeyPath": "/nonexistent/id_ed25519",
        }
    )
    with api_env.client() as admin:
        made = admin.post("/api/v2/obproxy/clusters", json=install_request([host.id]))
        assert made.status_code == 200, made.text
        task = wait_task(admin, made.json()["data"]["id"])
        assert task["status"] == "FAILED"
        clusters = admin.get("/api/v2/obproxy/clusters").json()["data"]["contents"]
        api = admin.get("/openapi.json").json()["paths"]
    failed = next(s for s in task["subtasks"] if s["status"] == "FAILED")
    values = {
        "taskId": task["id"],
        "subtaskId": failed["id"],
        "id": clusters[0]["id"],
        "hostId": host.id,
        "obproxyIds": 1,
        "obClusterName": "hooray",
    }
    calls = [(m.upper(), path) for path, item in api.items() for m in item]
    return {"task": task, "values": values, "calls": calls, "key": (key, secret)}


def _url(path: str, values: dict[str, Any]) -> str:
    if path.startswith("/api/v2/ob/clusters/"):
        values = {**values, "id": 1}  # the OceanBase cluster registered
    return re.sub(r"{(\w+)}", lambda m: str(values[m.group(1)]), path)


def _state(client: httpx.Client) -> list[Any]:
    """Everything a refused call could have changed, as the administrator reads it."""
    return [
        client.get(path).json()["data"]
        for path in ("/api/v2/tasks/instances", "/api/v2/obproxy/clusters", "/api/v2/compute/hosts")
    ]


def _as(env: ApiEnv, role: str) -> httpx.Client:
    return env.client(auth=(role.lower(), PASSWORDS[role]))


def test_a_viewer_reads_everything_and_changes_nothing(api_env: ApiEnv, site: dict) -> None:
    calls, values = site["calls"], site["values"]
    assert len(calls) >= 30 and sum(m in CHANGES for m, _ in calls) >= 20
    with api_env.client() as admin, _as(api_env, VIEWER) as viewer, _as(api_env, AUDITOR) as aud:
        before = _state(admin)
        for method, path in calls:
            needed = p.ROUTES[(method, path)][0]
            url = _url(path, values)
            for role, client in ((VIEWER, viewer), (AUDITOR, aud)):
                body = {} if method in ("POST", "PATCH") else None
                answer = client.request(method, url, json=body)
                if needed in p.GRANTS[role]:  # a read: what the administrator reads
                    assert method == "GET", (method, path)
                    expected = admin.request(method, url)
                    assert answer.status_code == expected.status_code, (role, url, answer.text)
                    if answer.status_code == 200 and "/parameters" not in path:  # read live
                        assert answer.json()["data"] == expected.json()["data"], url
                else:
                    error = error_of(answer, 403, 10009)
                    assert needed in error["message"] and role.lower() in error["message"]
        assert _state(admin) == before  # nothing was written
    # The lean route of the most polled call checks as its FastAPI route does.
    with api_env.client(auth=("nobody", "nobody-Passw0rd")) as nobody:
        detail = nobody.get(f"/api/v2/tasks/instances/{values['taskId']}")
        assert "user 'nobody' has no role" in error_of(detail, 403, 10009)["message"]
        error_of(nobody.get("/api/v2/tasks/instances"), 403, 10009)
    # The auditor reads the audit events, which need a permission no viewer has.
    assert ("GET", "/api/v2/audit/events") in p.ROUTES
    if ("GET", "/api/v2/audit/events") in calls:  # the route is another change's
        with _as(api_env, AUDITOR) as aud, _as(api_env, VIEWER) as viewer:
            assert aud.get("/api/v2/audit/events").status_code == 200
            error_of(viewer.get("/api/v2/audit/events"), 403, 10009)


def test_an_operator_runs_tasks(api_env: ApiEnv, site: dict) -> None:
    calls, task = site["calls"], site["task"]
    base = f"/api/v2/tasks/instances/{task['id']}"
    with _as(api_env, OPERATOR) as operator:
        for method, path in calls:  # none of the changes is refused for want of a permission
            if method in CHANGES:
                body = {} if method in ("POST", "PATCH") else None
                unknown = re.sub(r"{(\w+)}", "987654", path)  # nothing is there: nothing done
                answer = operator.request(method, unknown, json=body)
                assert answer.status_code in (400, 404), (path, answer.text)
        retried = operator.post(f"{base}/retry")
        assert retried.status_code == 200 and retried.json()["data"]["operation"] == "RETRY"
        assert wait_task(operator, task["id"])["status"] == "FAILED"  # the port is still closed
        rolled = operator.post(f"{base}/rollback")
        assert rolled.status_code == 200 and rolled.json()["data"]["operation"] == "ROLLBACK"
        body = sample_request() | {"name": "by-the-operator"}
        made = operator.post("/api/v2/obproxy/clusters", json=body)
        assert made.status_code == 200, made.text
        assert made.json()["data"]["creator"] == "operator"  # a TaskInstance names it
    # Adding users is no call of the API: the CLI does it, on the database itself.
    assert not [k for k, v in p.ROUTES.items() if v[0] == p.USER_MANAGER]


def test_a_viewers_access_key_is_refused_the_same(api_env: ApiEnv, site: dict) -> None:
    key, secret = site["key"]
    base = f"/api/v2/tasks/instances/{site['task']['id']}"
    with httpx.Client(base_url=api_env.url, auth=OcpSigner(key, secret), timeout=30) as signed:
        assert signed.get(base).status_code == 200
        error = error_of(signed.post(f"{base}/retry"), 403, 10009)
        assert error["message"] == (
            "permission denied: TASK_MANAGER is needed to retry a task; "
            "user 'viewer' has roles VIEWER"
        )
        error_of(signed.post("/api/v2/obproxy/clusters", json=sample_request()), 403, 10009)


def test_the_cli_through_a_server_prints_the_refusal(api_env: ApiEnv, site: dict) -> None:
    task_id = str(site["task"]["id"])
    remote = ("--server", api_env.url, "--user", "viewer")
    password = {"OCPTASK_PASSWORD": PASSWORDS[VIEWER]}
    shown = ocptask("task", "show", task_id, *remote, **password)
    assert shown.returncode in (0, 1), shown.stderr  # 1: the task is FAILED
    refused = one_line(ocptask("task", "retry", task_id, *remote, **password), 2)
    assert f"{api_env.url} refused user 'viewer': permission denied: TASK_MANAGER" in refused
    assert "(code 10009)" in refused
    key, secret = site["key"]
    signed = ("--server", api_env.url, "--access-key", key)
    by_key = ocptask("task", "rollback", task_id, *signed, OCPTASK_ACCESS_SECRET=secret)
    assert "permission denied: TASK_MANAGER is needed to roll back a task" in one_line(by_key, 2)


@contextmanager
def _logged_in(env: ApiEnv, name: str, password: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=env.url, follow_redirects=False, timeout=30) as session:
        form = session.get("/login").text
        token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
        login = {"username": name, "password": password, "csrf": token}
        assert session.post("/login", data=login).status_code == 303
        yield session


def _csrf(html: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)  # type: ignore[union-attr]


def _actions(html: str) -> dict[str, Any]:
    state = re.search(r'<script id="task-state" type="application/json">(.*?)</script>', html, re.S)
    data = json.loads(state.group(1))  # type: ignore[union-attr]
    return {"task": data["actions"], "subtasks": [s["actions"] for s in data["subtasks"]]}


def test_the_console_offers_a_viewer_no_action(api_env: ApiEnv, site: dict) -> None:
    task_id = site["task"]["id"]
    with (
        _logged_in(api_env, api_env.user, api_env.password) as admin,
        _logged_in(api_env, "viewer", PASSWORDS[VIEWER]) as viewer,
    ):
        mine, theirs = admin.get(f"/tasks/{task_id}").text, viewer.get(f"/tasks/{task_id}").text
        assert _actions(mine)["task"] == {"retry": True, "rollback": True}
        assert any(a["retry"] and a["skip"] for a in _actions(mine)["subtasks"])
        assert _actions(theirs)["task"] == {"retry": False, "rollback": False}
        assert not any(any(a.values()) for a in _actions(theirs)["subtasks"])
        polled = viewer.get(f"/tasks/{task_id}/state").json()["actions"]
        assert polled == {"retry": False, "rollback": False}
        for page, offered in (
            ("/obproxy", 'href="/obproxy/new"'),
            ("/hosts", 'id="add-hosts"'),
            ("/obclusters", 'action="/obclusters"'),
        ):
            assert offered in admin.get(page).text, page
            shown = viewer.get(page)
            assert shown.status_code == 200 and offered not in shown.text, page
        form = viewer.get("/obproxy/new")
        assert form.status_code == 403 and "OBPROXY_MANAGER" in form.text
        assert "text/html" in form.headers["content-type"]
        # The server refuses what the page does not offer, the session's token notwithstanding.
        csrf = _csrf(viewer.get("/tasks").text)
        retry = viewer.post(
            f"/api/v2/tasks/instances/{task_id}/retry", headers={"X-CSRF-Token": csrf}
        )
        error_of(retry, 403, 10009)
        added = {"obClusterId": "7", "clusterName": "sneaky", "rsList": "1.2.3.4:2881",
                 "password": "pw-sneaky-1", "csrf": csrf}  # fmt: skip
        refused = viewer.post("/obclusters", data=added)
        assert refused.status_code == 403 and "CLUSTER_MANAGER" in refused.text
        assert "sneaky" not in admin.get("/obclusters").text
