"""OCP's reference pages as data (fixtures/ocp_docs) and the conformance table that cites them
(docs/ocp-conformance.md) stay in step: every page file has the keys the conformance tests read,
every route ocptask serves has its page (or is listed as having none), and every row of the table
names a page file with the same method and path. No services: files only."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "fixtures" / "ocp_docs"
TABLE = ROOT / "docs" / "ocp-conformance.md"
REFERENCE = "en-US/1900.reference-guide/200.api-reference"
GITHUB = "https://github.com/oceanbase/ocp-doc/blob/V4.2.2/"
FOLDERS = {
    "1100.task-management": 8,
    "800.obproxy-management": 14,
    "600.host-module": 17,
    "450.cluster-information": 29,
}
KEYS = {
    "page",
    "branch",
    "title",
    "method",
    "path",
    "prerequisite",
    "path_parameters",
    "query_parameters",
    "body_parameters",
    "response_fields",
    "enums",
    "sample_request",
    "sample_response",
    "fixes",
    "versions",
}
PARAMETER_KEYS = {"name", "type", "required", "example", "description"}
# What ocptask serves, with the page that documents each route ("folder/page" of the fixture), or
# None for the routes no V4.2.2 page documents (the table's last section lists them).
SERVED: dict[tuple[str, str], str | None] = {
    ("GET", "/api/v2/tasks/instances"): "task-management/query-the-task-list",
    ("GET", "/api/v2/tasks/instances/{taskId}"): "task-management/query-task-instance-details",
    ("POST", "/api/v2/tasks/instances/{taskId}/retry"): "task-management/retry-a-task",
    ("POST", "/api/v2/tasks/instances/{taskId}/rollback"): "task-management/rollback-task",
    (
        "GET",
        "/api/v2/tasks/instances/{taskId}/subtasks/{subtaskId}/log",
    ): "task-management/query-subtask-instance-logs",
    (
        "POST",
        "/api/v2/tasks/instances/{taskId}/subtasks/{subtaskId}/retry",
    ): "task-management/retry-a-subtask",
    (
        "POST",
        "/api/v2/tasks/instances/{taskId}/subtasks/{subtaskId}/skip",
    ): "task-management/skip-a-subtask",
    (
        "POST",
        "/api/v2/tasks/instances/{taskId}/subtasks/{subtaskId}/cancel",
    ): "task-management/cancel-a-subtask",
    ("POST", "/api/v2/obproxy/clusters"): "obproxy-management/create-an-obproxy-cluster-api",
    ("GET", "/api/v2/obproxy/clusters"): "obproxy-management/queries-the-obproxy-cluster-list",
    (
        "GET",
        "/api/v2/obproxy/clusters/{id}",
    ): "obproxy-management/querying-details-about-an-obproxy-cluster",
    (
        "PATCH",
        "/api/v2/obproxy/clusters/{id}",
    ): "obproxy-management/update-obproxy-cluster-configuration",
    ("DELETE", "/api/v2/obproxy/clusters/{id}"): "obproxy-management/delete-obproxy-cluster-2",
    (
        "GET",
        "/api/v2/obproxy/clusters/{id}/parameters",
    ): "obproxy-management/queries-the-obproxy-cluster-parameters",
    (
        "GET",
        "/api/v2/obproxy/parameterInfo",
    ): "obproxy-management/query-the-metadata-of-an-obproxy-parameter",
    (
        "POST",
        "/api/v2/obproxy/clusters/{id}/obLinks/batchAdd",
    ): "obproxy-management/obproxy-cluster",
    (
        "DELETE",
        "/api/v2/obproxy/clusters/{id}/obLinks/{obClusterName}",
    ): "obproxy-management/obproxy-cluster-delete-an-ob-cluster",
    (
        "POST",
        "/api/v2/obproxy/clusters/{id}/obproxies/batchAdd",
    ): "obproxy-management/add-obproxy-1",
    ("POST", "/api/v2/obproxy/clusters/{id}/takeOver"): "obproxy-management/obproxy-4",
    (
        "DELETE",
        "/api/v2/obproxy/clusters/{id}/obproxies/{obproxyIds}",
    ): "obproxy-management/delete-obproxy",
    (
        "POST",
        "/api/v2/obproxy/clusters/{id}/obproxies/{obproxyIds}/restart",
    ): "obproxy-management/restart-obproxy",
    (
        "POST",
        "/api/v2/obproxy/clusters/{id}/obproxies/{obproxyIds}/upgrade",
    ): "obproxy-management/upgrade-obproxy-1",
    ("POST", "/api/v2/obproxy/clusters/{id}/servers/stop"): None,
    ("POST", "/api/v2/obproxy/clusters/{id}/servers/delete"): None,
    ("POST", "/api/v2/obproxy/clusters/{id}/servers/start"): None,
    ("GET", "/api/v2/compute/hosts"): "host-module/query-host-lists",
    ("POST", "/api/v2/compute/hosts/batchCreate"): "host-module/add-hosts-in-batches",
    ("POST", "/api/v2/compute/hosts/batchDelete"): "host-module/delete-multiple-hosts",
    ("GET", "/api/v2/compute/hosts/{hostId}"): "host-module/query-host-details",
    ("DELETE", "/api/v2/compute/hosts/{hostId}"): "host-module/delete-host",
    ("GET", "/api/v2/ob/clusters"): "cluster-information/query-clusters",
    ("GET", "/api/v2/ob/clusters/{id}"): None,
    ("GET", "/api/v2/audit/events"): None,  # a V4.2.2 page, of a folder not extracted
}
ROW = re.compile(r"^\|\s*`(GET|POST|PUT|PATCH|DELETE) ([^`]+)`\s*\|([^|]*)\|([^|]*)\|")


def shape(path: str) -> str:
    """A path with its placeholders unnamed, so `{taskId}` and `{taskInstanceId}` compare equal."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def fixture_name(page: str) -> str:
    """`<folder>/<page>` of the fixture for an ocp-doc page path, both without their numbers."""
    folder, name = page.removeprefix(REFERENCE + "/").split("/")
    return f"{folder.split('.', 1)[1]}/{Path(name).stem.split('.', 1)[1]}"


def endpoint_pages() -> dict[str, dict[str, Any]]:
    return {
        f"{path.parent.name}/{path.stem}": json.loads(path.read_text())
        for path in sorted(DATA.glob("*/*.json"))
    }


def table_rows() -> list[tuple[str, str, str, str]]:
    """(method, path, OCP page cell, ocptask cell) of every endpoint row of the draft."""
    rows = []
    for line in TABLE.read_text().splitlines():
        found = ROW.match(line)
        if found:
            rows.append((found[1], found[2], found[3].strip(), found[4].strip()))
    return rows


PAGES = endpoint_pages()


def test_every_page_of_the_four_folders_has_its_file() -> None:
    for folder, count in FOLDERS.items():
        names = [n for n in PAGES if n.startswith(folder.split(".", 1)[1] + "/")]
        assert len(names) == count, (folder, len(names))
        assert all(PAGES[n]["page"].startswith(f"{REFERENCE}/{folder}/") for n in names)
    assert len(PAGES) == sum(FOLDERS.values())


@pytest.mark.parametrize("name", sorted(PAGES))
def test_a_page_file_has_what_the_conformance_tests_read(name: str) -> None:
    page = PAGES[name]
    assert KEYS <= set(page), KEYS - set(page)
    assert fixture_name(page["page"]) == name
    assert page["branch"] == "V4.2.2"
    assert page["method"] in ("GET", "POST", "PUT", "PATCH", "DELETE")
    assert page["path"].startswith("/api/v2/")
    placeholders = {p.split(":", 1)[0] for p in re.findall(r"\{([^}]+)\}", page["path"])}
    assert {p["name"] for p in page["path_parameters"]} <= placeholders
    for where in ("path_parameters", "query_parameters", "body_parameters"):
        for parameter in page[where]:
            assert set(parameter) == PARAMETER_KEYS, (where, parameter)
            assert isinstance(parameter["required"], bool)
    documented = {f["name"] for f in page["response_fields"]}
    documented |= {p["name"] for w in ("query_parameters", "body_parameters") for p in page[w]}
    for key, values in page["enums"].items():
        assert key in documented, key
        assert values and all(isinstance(v, str) and v for v in values), key
    request = page["sample_request"]
    if request is not None:
        assert request["method"] == page["method"]
        assert request["path"].startswith("/api/v2/")
        assert isinstance(request["query"], dict)
    response = page["sample_response"]
    assert isinstance(response, dict), "every page's sample response parses (repairs in fixes)"
    assert response["successful"] is True
    assert response["status"] == 200
    assert all(isinstance(f, str) and "NOT PARSED" not in f for f in page["fixes"])
    assert set(page["versions"]) >= {"V4.0.0", "4.3"}


def test_the_structure_pages_and_the_error_codes_are_there() -> None:
    call = json.loads((DATA / "api-call-description.json").read_text())
    task = json.loads((DATA / "task-return-structure.json").read_text())
    throttled = [s["json"] for s in call["samples"] if s["json"]["status"] == 429]
    assert throttled and throttled[0]["error"]["code"] == 0
    labels = [t["label"] for t in task["tables"]]
    assert labels == ["Data structure of TaskInstance", "Data structure of SubtaskInstance"]
    codes = json.loads((DATA / "error-codes.json").read_text())
    assert all({"code", "http_status", "message", "page"} <= set(c) for c in codes)
    by_code = {c["code"]: c for c in codes}
    assert by_code[0]["http_status"] == 429
    assert by_code["TSK10001"]["message"] == "The {0} task does not exist."
    assert "V4.2.2" in by_code["ODP21001"]["branches"]
    assert "V4.0.0" in by_code["4001"]["branches"]


def test_every_served_route_has_its_page_file() -> None:
    for (method, path), name in SERVED.items():
        if name is None:
            continue
        page = PAGES[name]
        assert (page["method"], shape(page["path"])) == (method, shape(path)), name


def test_every_row_of_the_draft_names_a_page_file_with_its_method_and_path() -> None:
    rows = table_rows()
    named: list[str] = []
    for method, path, cell, ocptask in rows:
        assert ocptask in ("same", "differs", "not served"), (method, path, ocptask)
        link = re.search(r"\]\(" + re.escape(GITHUB) + r"([^)]+)\)", cell)
        if link is None:
            assert SERVED.get((method, path), "") is None, f"{method} {path}: no page, not listed"
            continue
        name = fixture_name(link[1])
        assert name in PAGES, link[1]
        page = PAGES[name]
        assert page["page"] == link[1]
        assert (page["method"], page["path"]) == (method, path), name
        named.append(name)
    assert sorted(named) == sorted(PAGES), "every page file has exactly one row"
    in_table = {(m, shape(p)): o for m, p, _, o in rows}
    for method, path in SERVED:
        assert in_table.get((method, shape(path))) in ("same", "differs"), (method, path)
    served = {(m, shape(p)) for m, p in SERVED}
    for (method, path), ocptask in in_table.items():
        if ocptask != "not served":
            assert (method, path) in served, f"{method} {path} is marked {ocptask} but not served"
