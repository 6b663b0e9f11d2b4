"""Task list filters as OCP documents and binds them, on a real ``ocptask serve``: each filter
gives the right subset, repeated keys equal comma lists, a filter on a concept ocptask lacks
(tenants) finds nothing, and paging is bounded as Spring Data bounds it."""

from __future__ import annotations

from typing import Any

import httpx

from engine import Node, TaskType, Template
from tests.api_helpers import data_of, error_of, wait_task
from tests.conftest import ApiEnv
from tests.helpers import S

OK = Template("install one", [Node(S + "Noop", "only")])
BAD = Template("install two", [Node(S + "Failing", "only")])
HELD = Template("install three", [Node(S + "Patient", "only", timeout=0)])


def _link(cluster_id: int, name: str) -> dict[str, Any]:
    return {"request": {"obLinks": [{"obClusterId": cluster_id, "clusterName": name}]}}


def _ids(client: httpx.Client, **params: Any) -> set[int]:
    page = data_of(client.get("/api/v2/tasks/instances", params={"size": 100, **params}))
    assert page["page"]["totalElements"] == len(page["contents"])
    return {t["id"] for t in page["contents"]}


def test_each_task_filter_gives_its_subset(api_env: ApiEnv) -> None:
    """Tasks of two clusters, two hosts, three statuses and two types."""
    engine = api_env.engine
    a = engine.submit(OK, {"host_ids": ["1"]}, payload=_link(11, "alpha-meta"))
    b = engine.submit(BAD, {"host_ids": ["2"]}, payload=_link(22, "beta-prod"))
    c = engine.submit(HELD, {"host_ids": ["1"]}, payload=_link(22, "beta-prod"))
    d = engine.submit(OK, task_type=TaskType.SCHEDULED)
    everything = {a.id, b.id, c.id, d.id}
    with api_env.client() as client:
        for task in (a, b, d):
            wait_task(client, task.id)
        assert _ids(client) == everything
        assert _ids(client, status="SUCCESSFUL") == {a.id, d.id}
        assert _ids(client, status="RUNNING") == {c.id}
        assert _ids(client, status="RUNNING,FAILED") == {b.id, c.id}
        repeated = client.get(
            "/api/v2/tasks/instances", params=[("status", "RUNNING"), ("status", "FAILED")]
        )
        assert {t["id"] for t in data_of(repeated)["contents"]} == {b.id, c.id}
        assert _ids(client, type="SCHEDULED") == {d.id}
        assert _ids(client, type="MANUAL") == {a.id, b.id, c.id}
        assert _ids(client, type="SYS_ONECE") == set()  # OCP's spelling, accepted; none here
        assert _ids(client, clusterId=22) == {b.id, c.id}
        assert _ids(client, cluterName="ALPHA") == {a.id}  # OCP's spelling; fuzzy, case-blind
        assert _ids(client, cluterName="prod", status="FAILED") == {b.id}
        assert _ids(client, hostId=1) == {a.id, c.id}
        assert _ids(client, name="two") == {b.id}
        # No task is about a tenant: ocptask has none, as an OCP without tenants would answer.
        assert _ids(client, tenantId=5) == set()
        assert _ids(client, tenantName="sys", clusterId=22) == set()
        listed = data_of(client.get("/api/v2/tasks/instances", params={"clusterId": 11}))
        assert listed["contents"][0]["cluster"] == {
            "id": 11,
            "name": "alpha-meta",
            "obClusterId": 11,
            "type": "PRIMARY",
        }
        assert listed["contents"][0]["tenant"] is None
        ordered = data_of(client.get("/api/v2/tasks/instances", params={"sort": "id,asc"}))
        assert [t["id"] for t in ordered["contents"]] == sorted(everything)
        # Refusals name the parameter: a misspelt one, a value outside OCP's enum, a sort field.
        err = error_of(
            client.get("/api/v2/tasks/instances", params={"clustername": "x"}), 400, 10001
        )
        assert err["subErrors"][0]["field"] == "clustername"
        assert _ids(client, clusterName="alpha") == {a.id}  # the right spelling is taken too
        err = error_of(client.get("/api/v2/tasks/instances", params={"status": "DONE"}), 400, 10001)
        assert err["subErrors"][0]["field"] == "status"
        error_of(client.get("/api/v2/tasks/instances", params={"sort": "tenant,asc"}), 400, 10011)
        client.post(f"/api/v2/tasks/instances/{c.id}/subtasks/{c.subtasks[0].id}/cancel")


def test_paging_is_bounded_as_spring_data_bounds_it(api_env: ApiEnv) -> None:
    """Spring Data caps ``size`` at the maximum (2000), takes the default for a size below 1 and
    the first page for a page below 1; the answer's page says what was served."""
    for _ in range(3):
        api_env.engine.submit(OK)
    with api_env.client() as client:
        for params, number, size in (
            ({"size": 5000}, 1, 2000),
            ({"size": 0}, 1, 10),
            ({"page": 0, "size": 2}, 1, 2),
            ({"page": -3}, 1, 10),
            ({"page": 2, "size": 2}, 2, 2),
        ):
            page = data_of(client.get("/api/v2/tasks/instances", params=params))["page"]
            assert (page["number"], page["size"], page["totalElements"]) == (number, size, 3)
        err = error_of(client.get("/api/v2/tasks/instances", params={"size": "ten"}), 400, 10001)
        assert err["subErrors"][0] == {
            "object": "query",
            "field": "size",
            "message": "must be a whole number",
            "rejectedValue": "ten",
        }
