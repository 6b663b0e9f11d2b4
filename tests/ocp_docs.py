"""OCP's reference pages as test data (``fixtures/ocp_docs``): their sample requests, sent to a
real server, and the key-for-key comparison of our answer with their sample response."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import httpx

DOCS = Path(__file__).resolve().parent.parent / "fixtures" / "ocp_docs"
ENVELOPE = {"successful", "timestamp", "duration", "status", "traceId", "server"}
# Maps whose keys are data, not fields: a task's context maps.
OPAQUE = {"stringMap", "listMap"}


@cache
def page(key: str) -> dict[str, Any]:
    """A reference page by its file key, e.g. ``task-management/query-the-task-list``."""
    return json.loads((DOCS / f"{key}.json").read_text())  # type: ignore[no-any-return]


def send_sample(
    client: httpx.Client,
    key: str,
    body: Callable[[Any], Any] | None = None,
    **ids: int | str,
) -> httpx.Response:
    """The page's own sample request, its path's placeholders filled with ``ids`` (ours: the
    docs' ids name their OCP's objects), its query and JSON body as the docs give them (``body``
    may fill a body's placeholders the same way)."""
    sample = page(key)["sample_request"]
    path = page(key)["path"]
    for name, value in ids.items():
        path, found = re.subn(r"\{" + name + r"(:[^}]*)?\}", str(value), path)
        assert found, f"{key}: no {{{name}}} in {path}"
    assert "{" not in path, f"{key}: {path} still has a placeholder"
    sent = copy.deepcopy(sample.get("body"))
    if body is not None:
        sent = body(sent)
    return client.request(sample["method"], path, params=sample.get("query") or None, json=sent)


def _paths(value: Any, prefix: str, found: set[str], hollow: set[str]) -> None:
    """Every key path of ``value`` (lists as ``[]``); ``hollow`` gets the paths whose value is
    null or an empty list (what is under them cannot be compared)."""
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            found.add(path)
            if key not in OPAQUE:
                _paths(item, path, found, hollow)
    elif isinstance(value, list):
        if not value:
            hollow.add(prefix)
        for item in value:
            _paths(item, prefix + "[]", found, hollow)
    elif value is None:
        hollow.add(prefix)


def key_diff(ours: Any, docs: Any) -> tuple[set[str], set[str]]:
    """(missing, extra): key paths of the docs' sample that our answer lacks, and ours that it
    lacks. Under a null or an empty list on one side nothing is compared: the docs' samples
    leave some lists empty, and a record's null is a value OCP's own records show."""
    ours_found: set[str] = set()
    docs_found: set[str] = set()
    ours_hollow: set[str] = set()
    docs_hollow: set[str] = set()
    _paths(ours, "", ours_found, ours_hollow)
    _paths(docs, "", docs_found, docs_hollow)

    def under(path: str, hollow: set[str]) -> bool:
        return any(path.startswith(h + ".") or path.startswith(h + "[]") for h in hollow)

    missing = {p for p in docs_found - ours_found if not under(p, ours_hollow)}
    extra = {p for p in ours_found - docs_found if not under(p, docs_hollow)}
    return _tops(missing), _tops(extra)


def _tops(paths: set[str]) -> set[str]:
    """Only the outermost of nested paths: a missing object's own fields are not news."""
    return {
        p for p in paths if not any(p.startswith(q + ".") or p.startswith(q + "[]") for q in paths)
    }


def compare(response: httpx.Response, key: str) -> tuple[set[str], set[str]]:
    """``key_diff`` of our answer and the page's sample response, after checking the status."""
    body = response.json()
    assert response.status_code == 200 and body["successful"], body
    return key_diff(body, page(key)["sample_response"])


def chain(subtasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A chain's subtasks from its first to its last (each one's only downstream next): OCP's
    samples list them in no particular order."""
    by_id = {s["id"]: s for s in subtasks}
    (first,) = [s for s in subtasks if not s["upstreams"]]
    ordered = [first]
    while ordered[-1]["downstreams"]:
        (after,) = ordered[-1]["downstreams"]
        ordered.append(by_id[after])
    assert len(ordered) == len(subtasks), "not one chain"
    return ordered


def prepare_host_nodes() -> list[tuple[str, str, int]]:
    """(name, description, timeout) of each node of OCP's "Prepare host" task, in order, as its
    "Add hosts in batches" page shows them."""
    task = page("host-module/add-hosts-in-batches")["sample_response"]["data"]["contents"][0]
    return [(s["name"], s["description"], s["timeout"]) for s in chain(task["subtasks"])]
