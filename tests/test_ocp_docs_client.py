"""A client written from OCP's documentation alone reads every list and record ocptask serves:
it signs with AK/SK as ``300.ak-sk-sign-roles.md`` says (``tests/docs_client.py``, checked
against that page's own examples), sends the reference pages' sample requests, and expects every
field their tables document. Values ocptask cannot know may be null; no field may be missing."""

from __future__ import annotations

from typing import Any

import httpx

from fixtures import PACKAGE, register_ob_cluster
from tests.api_helpers import wait_task
from tests.docs_client import DocsSigner, message, signature
from tests.ocp_docs import page, send_sample

# Where a page's table and its own sample disagree, the sample (the JSON) wins.
DOC_SLIPS = {
    "data.page.totalPage": "data.page.totalPages",
    "data.subtasks.paralleIdx": "data.subtasks.parallelIdx",
    "data.subtasks.downstream": "data.subtasks.downstreams",
    "data.paralleIdx": "data.parallelIdx",
    "data.downstream": "data.downstreams",
    # The OceanBase cluster list's table flattens its page object into data.
    "data.totalElements": "data.page.totalElements",
    "data.totalPage": "data.page.totalPages",
    "data.number": "data.page.number",
    "data.size": "data.page.size",
}


# The parameters page's table puts the parameters in data; its sample, in data.contents.
IN_CONTENTS = {"obproxy-management/queries-the-obproxy-cluster-parameters"}


def documented(key: str) -> set[str]:
    names = {DOC_SLIPS.get(f["name"], f["name"]) for f in page(key)["response_fields"]}
    if key in IN_CONTENTS:
        names = {n.replace("data.", "data.contents.", 1) for n in names} | {"data"}
    return names


def present(value: Any, prefix: str = "") -> tuple[set[str], set[str]]:
    """The field paths of an answer as the docs write them (no list markers), and those whose
    value is null or an empty list (nothing under them can be shown)."""
    found: set[str] = set()
    empty: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            found.add(path)
            if item is None or item == []:
                empty.add(path)
            inner, hollow = present(item, path)
            found |= inner
            empty |= hollow
    elif isinstance(value, list):
        for item in value:
            inner, hollow = present(item, prefix)
            found |= inner
            empty |= hollow
    return found, empty


def missing(response: httpx.Response, key: str) -> set[str]:
    body = response.json()
    assert response.status_code == 200 and body["successful"], body
    found, empty = present(body)
    return {
        name for name in documented(key) - found if not any(name.startswith(e + ".") for e in empty)
    }


def test_the_docs_signer_gives_the_docs_signatures() -> None:
    secret = "2fc0c299cc94c6be266f2ceece765d4d"
    body = b'{"name":"test01","description":"test","regionId":1}'
    first = message(
        "POST", body, "application/json", "Tue, 17 Jan 2023 09:13:57 GMT",
        "ocp.alibaba.net:8080", {"x-ocp-data": "A,1"}, "/api/v2/compute/idcs", [],
    )  # fmt: skip
    assert signature(secret, first) == "XN8P+O+v3vUabB16ZCooq5wMJoY="
    second = message(
        "GET", b"", "application/json;charset=utf-8", "Tue, 17 Jan 2023 04:14:02 GMT",
        "ocp.alibaba.net:8080", {}, "/api/v2/compute/idcs", [("size", "100")],
    )  # fmt: skip
    assert signature(secret, second) == "TsQD6HDOuZuJ409m0wdnZPmijlc="


def test_a_client_from_the_docs_reads_every_list_and_record(api_hosts: Any) -> None:
    env, host_ids, _ = api_hosts
    register_ob_cluster(env.engine, "proxyro-Secret-4711")
    signer = DocsSigner(env.access_key_id, env.access_key_secret)
    # The docs' example 2 sends a GET with a Content-Type: OCP clients do, and must get in.
    headers = {"Content-Type": "application/json;charset=utf-8"}
    with httpx.Client(base_url=env.url, auth=signer, headers=headers, timeout=30) as client:

        def on_hosts(body: dict[str, Any]) -> dict[str, Any]:
            # The page's table: with hosts, their ports and the package are required too.
            install = {"hostIds": host_ids, "sqlPort": 2883, "exportPort": 2884}
            body["obproxyInstallParam"] = install | {"version": PACKAGE}
            return body

        created = send_sample(
            client, "obproxy-management/create-an-obproxy-cluster-api", body=on_hosts
        )
        assert created.status_code == 200, created.text
        task = wait_task(client, created.json()["data"]["id"])
        assert task["status"] == "SUCCESSFUL", task
        cid = int(task["subtasks"][0]["context"]["stringMap"]["obproxy_cluster_id"])
        sub = task["subtasks"][-1]["id"]
        reads = {
            "task-management/query-the-task-list": {},
            "task-management/query-task-instance-details": {"taskInstanceId": task["id"]},
            "task-management/query-subtask-instance-logs": {
                "taskInstanceId": task["id"],
                "subtaskInstanceId": sub,
            },
            "obproxy-management/queries-the-obproxy-cluster-list": {},
            "obproxy-management/querying-details-about-an-obproxy-cluster": {"id": cid},
            "obproxy-management/queries-the-obproxy-cluster-parameters": {"id": cid},
            "host-module/query-host-lists": {},
            "host-module/query-host-details": {"hostId": host_ids[0]},
            "cluster-information/query-clusters": {},
        }
        gaps = {key: missing(send_sample(client, key, **ids), key) for key, ids in reads.items()}
    assert all(not found for found in gaps.values()), {k: v for k, v in gaps.items() if v}
