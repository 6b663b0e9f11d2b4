"""A database made by ocptask before issue 22 (OCP's task DAGs; the commit before it, run from
its own source tree) opens with today's code: its one-task "Add obproxy" (a chain per host, the
DAG of then), FAILED, still loads, reads as OCP's record, and retries to SUCCESSFUL; today's
calls then work on the OBProxies it made (a delete runs today's 8-node Offline obproxy)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from engine import Engine, SubtaskStatus, TaskStatus
from fixtures import register_ob_cluster
from fixtures import sandbox as sandbox_hosts
from tasks.obproxy import delete_obproxies
from tests.test_previous_layout import run_previous

BEFORE_ISSUE_22 = "fc9b38bc6ff82fed2a591b415865ccd011441c80"
"""The last commit before issue 22: batchAdd was one "Add obproxy" task, offline five nodes."""
PROXYRO_PASSWORD = "proxyro-Before-22-1"
pytestmark = pytest.mark.timeout(300)

# Run by that commit's code: a create on host 1, then an add of host 2 whose chain fails at
# "Set obproxy user and password for connect" (the OceanBase cluster forgotten meanwhile).
_MAKE_FAILED_ADD = textwrap.dedent(
    """
    import json, sys
    from engine import Engine
    from fixtures import install_request, register_ob_cluster
    from tasks.obclusters.registry import ObClusters
    from tasks.obproxy import add_obproxies, create_cluster

    db, inventory, password = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    with Engine(db) as engine:
        ids = [engine.hosts.add(h).id for h in inventory]
        register_ob_cluster(engine, password)
        created = engine.run(create_cluster(engine, install_request(ids[:1])).id, timeout=200)
        assert created.status.value == "SUCCESSFUL", created.status
        ObClusters(engine).remove(1)
        body = {"hostIds": [ids[1]], "sqlPort": 2883, "exporterPort": 2884,
                "version": "obproxy-4.3.2.0-1.el7.x86_64.rpm"}
        final = engine.run(add_obproxies(engine, 1, body).id, timeout=200)
        print(json.dumps({"id": final.id, "status": final.status.value, "hosts": ids}))
    """
)


def test_a_failed_add_of_before_issue_22_retries_and_today_deletes_it(
    sandbox: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "ocptask.db"
    try:
        before = run_previous(
            BEFORE_ISSUE_22, _MAKE_FAILED_ADD, db, sandbox, PROXYRO_PASSWORD, monkeypatch
        )
        assert before["status"] == "FAILED"

        with Engine(str(db), parallelism=4) as engine:
            failed = engine.get(before["id"])
            assert failed.name == "Add obproxy" and failed.status is TaskStatus.FAILED
            record = failed.to_ocp()  # OCP's record of an old task reads as before
            assert {s["name"] for s in record["subtasks"]} >= {"Check if process not exist"}
            stuck = {s.name for s in failed.subtasks if s.status is SubtaskStatus.FAILED}
            assert stuck == {"Set obproxy user and password for connect"}
            register_ob_cluster(engine, PROXYRO_PASSWORD)
            final = engine.run(engine.retry(failed.id).id, timeout=200)
            problems = [
                (s.name, engine.log(final.id, s.id)[-500:])
                for s in final.subtasks
                if s.status is not SubtaskStatus.SUCCESSFUL
            ]
            assert final.status is TaskStatus.SUCCESSFUL, problems

            # Today's delete of the OBProxy the old add made: OCP's eight nodes.
            with engine.store.engine.connect() as conn:
                rows = conn.exec_driver_sql(
                    "SELECT id FROM obproxy_server WHERE host_id = ?", (before["hosts"][1],)
                )
                (server_id,) = [r for (r,) in rows]
            deleted = engine.run(delete_obproxies(engine, 1, [server_id]).id, timeout=200)
            assert deleted.status is TaskStatus.SUCCESSFUL
            assert len({s.name for s in deleted.subtasks}) == 8
    finally:
        sandbox_hosts.reset(sandbox["state"])
