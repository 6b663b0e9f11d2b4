"""``docs/ocp-conformance.md`` held to account: every row that says ocptask serves an endpoint
names a test here that sends the docs' own sample request to a real ``ocptask serve`` and compares
the answer with the docs' sample response key for key; a difference not written down fails."""

from __future__ import annotations

import ast
import re
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine import Node, Template
from fixtures import PACKAGE, install_request, register_ob_cluster
from tests.api_helpers import error_of, wait_task
from tests.conftest import ApiEnv
from tests.helpers import S
from tests.ocp_docs import chain, compare, page, prepare_host_nodes, send_sample

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "docs" / "ocp-conformance.md"
ROW = re.compile(
    r"^\| `(?P<endpoint>[A-Z]+ [^`]+)` \| (?:\[[^\]]*\]\((?P<link>[^)]+)\)|[^|]+) "
    r"\| (?P<state>[a-z ]+) \|(?P<rest>.*)\|\s*$"
)
TEST = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def rows() -> list[dict[str, str]]:
    found = []
    for line in TABLE.read_text().splitlines():
        match = ROW.match(line)
        if match:
            found.append(match.groupdict() | {"link": match["link"] or ""})
    return found


def page_key(link: str) -> str:
    """The fixture key of a row's OCP page link (folder and page without their numbers)."""
    folder, name = link.removesuffix(".md").split("/")[-2:]
    strip = lambda part: part.split(".", 1)[1]  # noqa: E731
    return f"{strip(folder)}/{strip(name)}"


def test_every_served_row_names_a_test_that_sends_the_docs_sample() -> None:
    """A row marked same or differs names its tests; they exist, and one of them sends that
    page's sample (it names the page). Removing the test, or the row's claim, fails here."""
    served = [r for r in rows() if r["state"] in ("same", "differs")]
    assert len(served) >= 20, "the table lost its served rows"
    trees: dict[Path, dict[str, str]] = {}
    for row in served:
        named = TEST.findall(row["rest"])
        assert named, f"{row['endpoint']}: a served row names no test"
        key = page_key(row["link"]) if "github.com/oceanbase/ocp-doc" in row["link"] else ""
        senders = []
        for file, function in named:
            path = ROOT / file
            if path not in trees:
                source = path.read_text()
                trees[path] = {
                    node.name: ast.get_source_segment(source, node) or ""
                    for node in ast.walk(ast.parse(source))
                    if isinstance(node, ast.FunctionDef)
                }
            assert function in trees[path], f"{row['endpoint']}: {file}::{function} is gone"
            source = trees[path][function]
            sends = "send_sample(" in source and f'"{key}"' in source
            senders += [function] if sends else []
        if "github.com/oceanbase/ocp-doc" in row["link"]:  # a page with a sample to send
            assert senders, f"{row['endpoint']}: none of its tests sends {key}'s sample"


def test_the_table_has_no_unverified_claim() -> None:
    assert "To verify" not in TABLE.read_text(), "a row still says 'To verify'"


FAILS = Template(
    "fails", [Node(S + "Noop", "first"), Node(S + "Failing", "second", upstreams=["first"])]
)
WAITS = Template("waits", [Node(S + "Patient", "wait", timeout=0)])


def _failed(env: ApiEnv, client: httpx.Client) -> dict[str, Any]:
    task = env.engine.submit(FAILS)
    final = wait_task(client, task.id)
    assert final["status"] == "FAILED", final
    return final


# What a task's record has beyond a page's sample: fields OCP's task return structure documents
# (400.task-return-structure.md: TaskInstance.context, SubtaskInstance.className and .context).
# The detail, retry and rollback pages' tables also list ``cluster`` and ``tenant``.
TASK_STRUCTURE = {
    "data.context",
    "data.subtasks[].context",
    "data.subtasks[].className",
    "data.cluster",
    "data.tenant",
}
SUBTASK_STRUCTURE = {"data.context", "data.className"}
# ocptask's own, in its task lists (the CLI's --since reads createTime without a detail call).
# A started task as OCP's own create page shows it (``context``, ``taskDefinitionId``,
# ``subtasks[].className``: 100.create-an-obproxy-cluster-api.md), where this page's sample
# leaves them out.
STARTED_TASKS = {
    "data.contents[].context",
    "data.contents[].taskDefinitionId",
    "data.contents[].subtasks[].className",
}
LIST_EXTRAS = {"data.contents[].type", "data.contents[].operation", "data.contents[].createTime"}


def _same(
    response: httpx.Response,
    key: str,
    missing: frozenset[str] | set[str] = frozenset(),
    extra: frozenset[str] | set[str] = frozenset(),
) -> None:
    found = compare(response, key)
    assert found == (set(missing), set(extra)), f"{key}: (missing, extra) = {found}"


def test_task_management_pages(api_env: ApiEnv) -> None:
    """The eight task-management pages, each with its own sample request."""
    with api_env.client() as client:
        failed = _failed(api_env, client)
        second = failed["subtasks"][1]["id"]
        _same(
            send_sample(client, "task-management/query-the-task-list"),
            "task-management/query-the-task-list",
            extra=LIST_EXTRAS,
        )
        _same(
            send_sample(
                client, "task-management/query-task-instance-details", taskInstanceId=failed["id"]
            ),
            "task-management/query-task-instance-details",
            extra=TASK_STRUCTURE,
        )
        _same(
            send_sample(
                client,
                "task-management/query-subtask-instance-logs",
                taskInstanceId=failed["id"],
                subtaskInstanceId=second,
            ),
            "task-management/query-subtask-instance-logs",
        )
        _same(
            send_sample(client, "task-management/retry-a-task", taskInstanceId=failed["id"]),
            "task-management/retry-a-task",
            extra=TASK_STRUCTURE,
        )
        wait_task(client, failed["id"])
        other = _failed(api_env, client)
        _same(
            send_sample(
                client,
                "task-management/retry-a-subtask",
                taskInstanceId=other["id"],
                subtaskInstanceId=other["subtasks"][1]["id"],
            ),
            "task-management/retry-a-subtask",
            extra=SUBTASK_STRUCTURE,
        )
        wait_task(client, other["id"])
        _same(
            send_sample(
                client,
                "task-management/skip-a-subtask",
                taskInstanceId=other["id"],
                subtaskInstanceId=other["subtasks"][1]["id"],
            ),
            "task-management/skip-a-subtask",
        )
        undo = _failed(api_env, client)
        _same(
            send_sample(client, "task-management/rollback-task", taskInstanceId=undo["id"]),
            "task-management/rollback-task",
            extra=TASK_STRUCTURE,
        )
        waiting = api_env.engine.submit(WAITS)
        sub = waiting.subtasks[0].id
        deadline = 50
        while (
            client.get(f"/api/v2/tasks/instances/{waiting.id}").json()["data"]["subtasks"][0][
                "status"
            ]
            != "RUNNING"
        ):
            deadline -= 1
            assert deadline, "the step never started"
            time.sleep(0.1)
        _same(
            send_sample(
                client,
                "task-management/cancel-a-subtask",
                taskInstanceId=waiting.id,
                subtaskInstanceId=sub,
            ),
            "task-management/cancel-a-subtask",
        )


def test_host_module_pages(api_env: ApiEnv) -> None:
    """batchCreate, list, detail and delete, each with the docs' sample request. The docs'
    placeholders (address ``xxx.xxx.xxx.xxx``, credential 2000001) become a real address with no
    sshd (Prepare host fails fast) and a real credential."""
    cred = api_env.engine.credentials.add("docs", "admin", password="docs-Passw0rd")
    with api_env.client() as client:

        def ours(body: dict[str, Any]) -> dict[str, Any]:
            body["hostBasicDataList"][0]["innerIpAddress"] = "127.0.0.9"
            return body | {"credentialId": cred.id}

        created = send_sample(client, "host-module/add-hosts-in-batches", body=ours)
        _same(created, "host-module/add-hosts-in-batches", extra=STARTED_TASKS)
        (task,) = created.json()["data"]["contents"]  # a task per host, as the sample's one
        # OCP's "Prepare host": the sample's nodes, names, descriptions and timeouts, in order.
        ours = [(s["name"], s["description"], s["timeout"]) for s in chain(task["subtasks"])]
        assert ours == prepare_host_nodes()
        failed = wait_task(client, task["id"])
        assert failed["status"] == "FAILED"  # no sshd at that address
        host_id = task["hostId"]
        assert isinstance(host_id, int) and task["context"]["stringMap"]["host_id"] == str(host_id)
        _same(send_sample(client, "host-module/query-host-lists"), "host-module/query-host-lists")
        _same(
            send_sample(client, "host-module/query-host-details", hostId=host_id),
            "host-module/query-host-details",
        )
        _same(
            send_sample(client, "host-module/delete-host", hostId=host_id),
            "host-module/delete-host",
        )


def test_obproxy_management_pages(api_hosts: Any) -> None:
    """The OBProxy pages ocptask serves, each with the docs' own sample request, on the
    sandbox hosts: create (the docs' body: CONFIG_URL, no hosts), add OBProxies (the docs' body,
    its host and package named by ours), restart and upgrade (no body, as the samples), delete
    them, unlink and link the OceanBase cluster, list parameters, delete the cluster."""
    env, host_ids, _ = api_hosts
    register_ob_cluster(env.engine, "proxyro-Secret-4711")
    with env.client() as client:
        created = send_sample(client, "obproxy-management/create-an-obproxy-cluster-api")
        _same(created, "obproxy-management/create-an-obproxy-cluster-api")
        made = wait_task(client, created.json()["data"]["id"])
        assert made["status"] == "SUCCESSFUL", made
        cid = int(made["subtasks"][0]["context"]["stringMap"]["obproxy_cluster_id"])

        def hosts(body: dict[str, Any]) -> dict[str, Any]:
            return body | {"hostIds": host_ids[:2], "version": PACKAGE}

        added = send_sample(client, "obproxy-management/add-obproxy-1", body=hosts, id=cid)
        _same(added, "obproxy-management/add-obproxy-1")
        # As the sample: an "Install obproxy" task per host, naming it (hostId, host_id).
        contents = added.json()["data"]["contents"]
        assert [(t["name"], t["hostId"]) for t in contents] == [
            ("Install obproxy", h) for h in host_ids[:2]
        ]
        assert [t["context"]["stringMap"]["host_id"] for t in contents] == [
            str(h) for h in host_ids[:2]
        ]
        for task in contents:
            assert wait_task(client, task["id"])["status"] == "SUCCESSFUL"
        url = f"/api/v2/obproxy/clusters/{cid}"
        servers = client.get(url).json()["data"]["obproxies"]
        first = servers[0]["id"]
        _same(
            send_sample(
                client, "obproxy-management/queries-the-obproxy-cluster-parameters", id=cid
            ),
            "obproxy-management/queries-the-obproxy-cluster-parameters",
        )
        for key in ("obproxy-management/restart-obproxy", "obproxy-management/upgrade-obproxy-1"):
            started = send_sample(client, key, id=cid, obproxyIds=first)
            _same(started, key)
            assert wait_task(client, started.json()["data"]["id"])["status"] == "SUCCESSFUL"
        shown = client.get(f"/api/v2/obproxy/clusters/{cid}").json()["data"]["obproxies"]
        assert {s["id"]: s["version"] for s in shown}[first] == "4.3.3.0-1"  # the newest
        # OCP 4.2's body names the package by its short name; an unknown one lists those there are.
        second = servers[1]["id"]
        unknown = {"shortRpmName": "obproxy-9.9.9.9-1"}
        err = error_of(client.post(f"{url}/obproxies/{second}/upgrade", json=unknown), 400, 10001)
        assert "obproxy-4.3.2.0-1" in err["message"] and "obproxy-4.3.3.0-1" in err["message"]
        by_name = {"shortRpmName": "obproxy-4.3.3.0-1"}
        started = client.post(f"{url}/obproxies/{second}/upgrade", json=by_name).json()["data"]
        assert wait_task(client, started["id"])["status"] == "SUCCESSFUL"
        # Again to the version it runs: refused at the field the body used.
        again = client.post(f"{url}/obproxies/{second}/upgrade", json=by_name)
        assert error_of(again, 400, 10001)["target"] == "shortRpmName"
        removed = send_sample(client, "obproxy-management/delete-obproxy", id=cid, obproxyIds=first)
        _same(removed, "obproxy-management/delete-obproxy")
        wait_task(client, removed.json()["data"]["id"])
        _same(
            send_sample(
                client,
                "obproxy-management/obproxy-cluster-delete-an-ob-cluster",
                id=cid,
                obClusterName="hooray",
            ),
            "obproxy-management/obproxy-cluster-delete-an-ob-cluster",
        )
        _same(
            send_sample(client, "obproxy-management/obproxy-cluster", id=cid),
            "obproxy-management/obproxy-cluster",
        )
        gone = send_sample(client, "obproxy-management/delete-obproxy-cluster-2", id=cid)
        _same(gone, "obproxy-management/delete-obproxy-cluster-2")
        assert wait_task(client, gone.json()["data"]["id"])["status"] == "SUCCESSFUL"


def _shape(path: str) -> str:
    """A path with its placeholders blanked, so the docs' names and ours compare."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def test_every_documented_query_parameter_is_taken(tmp_path: Path) -> None:
    """Each served page's documented query parameters are declared on its route: a parameter
    OCP documents is never refused as unknown (nor, by ``known_parameters``, ignored)."""
    from api.app import create_app
    from engine import Engine

    with Engine(str(tmp_path / "routes.db")) as engine:
        schema = create_app(engine).openapi()  # what the routes declare, as a client sees it
    declared = {
        (method.upper(), _shape(path)): {
            p["name"] for p in operation.get("parameters", []) if p["in"] == "query"
        }
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
    }
    checked = 0
    for row in rows():
        if row["state"] not in ("same", "differs") or "ocp-doc" not in row["link"]:
            continue
        doc = page(page_key(row["link"]))
        names = {p["name"] for p in doc["query_parameters"]}
        route = declared[(doc["method"], _shape(doc["path"]))]
        assert names <= route, f"{row['endpoint']}: {sorted(names - route)} not taken"
        checked += len(names)
    assert checked >= 20


def test_hosts_batch_delete(api_env: ApiEnv) -> None:
    """The docs' sample (``{"hostIdList": [...]}``) removes every host it names, answering
    without data; a list naming a host a running task needs, or an unknown one, removes none and
    names each at its place in the list."""
    engine = api_env.engine
    made = [
        engine.hosts.add(
            {
                "name": f"idle-{i}",
                "innerIpAddress": f"127.0.0.{60 + i}",
                "username": "admin",
                "password": "pw-1",
            }
        ).id
        for i in range(4)
    ]
    busy = engine.submit(WAITS, {"host_ids": [str(made[3])]})

    def ids(names: list[int]) -> Any:
        return lambda body: body | {"hostIdList": names}

    with api_env.client() as client:
        refused = send_sample(
            client, "host-module/delete-multiple-hosts", body=ids([made[2], made[3], 424242])
        )
        err = error_of(refused, 400, 10001)
        assert {e["field"]: e["rejectedValue"] for e in err["subErrors"]} == {
            "hostIdList[1]": made[3],
            "hostIdList[2]": 424242,
        }
        assert f"task {busy.id} is running on it" in err["subErrors"][0]["message"]
        assert {h.id for h in engine.hosts.list()} >= set(made)  # none removed
        _same(
            send_sample(client, "host-module/delete-multiple-hosts", body=ids(made[:2])),
            "host-module/delete-multiple-hosts",
        )
        assert {h.id for h in engine.hosts.list()} == set(made[2:])
        client.post(f"/api/v2/tasks/instances/{busy.id}/subtasks/{busy.subtasks[0].id}/cancel")


def test_obproxy_parameter_info(api_env: ApiEnv) -> None:
    """The docs' sample request answers the table from obproxy's source key for key; ``name``
    gives one parameter's metadata; a ``version`` of another release line finds none."""
    key = "obproxy-management/query-the-metadata-of-an-obproxy-parameter"
    with api_env.client() as client:
        _same(send_sample(client, key), key)
        one = client.get("/api/v2/obproxy/parameterInfo", params={"name": "proxy_mem_limited"})
        (entry,) = one.json()["data"]["contents"]
        assert (entry["type"], entry["defaultValue"], entry["needRestart"]) == (
            "CAPACITY",
            "2G",
            False,
        )
        line = client.get("/api/v2/obproxy/parameterInfo", params={"version": "4.3.2.0"})
        assert len(line.json()["data"]["contents"]) > 200
        other = client.get("/api/v2/obproxy/parameterInfo", params={"version": "1.9.1"})
        assert other.json()["data"]["contents"] == []


def test_servers_delete_leaves_skipped_hosts_alone(api_hosts: Any) -> None:
    """OCP 4.3's ``servers/delete``: every named OBProxy leaves the cluster; the host of one in
    ``skipHostOperationServerIds`` is not touched (its obproxy still answers), the other's is
    stopped and removed."""
    env, host_ids, sandbox = api_hosts
    register_ob_cluster(env.engine, "proxyro-Secret-4711")
    addresses = {h["innerIpAddress"] for h in sandbox["inventory"]}
    with env.client() as client:
        created = client.post("/api/v2/obproxy/clusters", json=install_request(host_ids[:2]))
        made = wait_task(client, created.json()["data"]["id"])
        assert made["status"] == "SUCCESSFUL", made
        cid = int(made["subtasks"][0]["context"]["stringMap"]["obproxy_cluster_id"])
        url = f"/api/v2/obproxy/clusters/{cid}"
        servers = client.get(url).json()["data"]["obproxies"]
        (kept, gone) = sorted(servers, key=lambda s: s["id"])
        stray = {"obproxyServerIds": [gone["id"]], "skipHostOperationServerIds": [kept["id"]]}
        err = error_of(client.post(f"{url}/servers/delete", json=stray), 400, 10001)
        assert err["target"] == "skipHostOperationServerIds[0]"
        body = {
            "obproxyServerIds": [kept["id"], gone["id"]],
            "skipHostOperationServerIds": [kept["id"]],
        }
        task = client.post(f"{url}/servers/delete", json=body).json()["data"]
        assert task["name"] == "Delete obproxy server"  # OCP 4.3's name for this call's task
        final = wait_task(client, task["id"])
        assert final["status"] == "SUCCESSFUL", final
        assert client.get(url).json()["data"]["obproxies"] == []
    assert kept["ip"] in addresses
    with socket.create_connection((kept["ip"], 2883), timeout=5):
        pass  # left alone: still serving
    with pytest.raises(OSError):
        socket.create_connection((gone["ip"], 2883), timeout=5).close()
