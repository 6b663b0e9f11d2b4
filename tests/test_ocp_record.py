"""The record for the seed's sample request has exactly OCP's shape, before and after running."""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Any

from engine import Engine, TaskStatus
from fixtures import REQUESTS, sample_request
from tasks.obproxy import create_cluster
from tests.helpers import chain

SAMPLE = json.loads((REQUESTS.parent / "responses" / "create-obproxy-cluster.json").read_text())
TASK_EXTRAS = {"createTime", "finishTime", "prohibitRollback"}
SUBTASK_EXTRAS = {"executor", "context", "createTime", "startTime", "finishTime"}
# OCP's style: to the millisecond, trailing zeros of the fraction (and a bare ".") left out.
OCP_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,2}[1-9])?[+-]\d\d:\d\d$")

BACKENDS = ["sqlite", "postgres"]


def _keys(obj: dict[str, Any]) -> set[str]:
    return set(obj)


def test_submission_record_matches_seed_sample(engine: Engine) -> None:
    record = create_cluster(engine, sample_request()).to_ocp()
    sample = SAMPLE["data"]
    assert _keys(record) == _keys(sample) | TASK_EXTRAS
    assert _keys(record["context"]) == _keys(sample["context"])
    assert record["context"] == sample["context"]
    for ours in record["subtasks"]:
        assert _keys(ours) == _keys(sample["subtasks"][0]) | SUBTASK_EXTRAS
        assert _keys(ours["context"]) == _keys(sample["context"])
    assert record["status"] == "RUNNING"
    assert record["operation"] == "EXECUTE"
    assert record["type"] == "MANUAL"
    assert record["taskDefinitionId"] == -1
    assert record["creator"] == "admin"
    assert record["name"] == "Install obproxy"
    assert record["prohibitRollback"] is False
    assert record["finishTime"] is None
    assert OCP_TIME.match(record["startTime"]) and OCP_TIME.match(record["createTime"])

    prepare, finish = record["subtasks"]
    expected = {s["name"]: s for s in sample["subtasks"]}
    for ours in (prepare, finish):
        theirs = expected[ours["name"]]
        for key in (
            "description",
            "nodeType",
            "operation",
            "parallelIdx",
            "prohibitRollback",
            "runTime",
            "seriesId",
            "status",
            "timeout",
        ):
            assert ours[key] == theirs[key], (ours["name"], key)
    assert (prepare["status"], finish["status"]) == ("READY", "PENDING")
    assert (prepare["timeout"], finish["timeout"]) == (300, 0)
    assert (prepare["seriesId"], finish["seriesId"]) == (0, 1)
    assert prepare["upstreams"] == [] and prepare["downstreams"] == [finish["id"]]
    assert finish["upstreams"] == [prepare["id"]] and finish["downstreams"] == []
    assert prepare["startTime"] is None and prepare["executor"] is None


def test_finished_record_is_successful(engine: Engine) -> None:
    task = create_cluster(engine, sample_request())
    final = engine.run(task.id, timeout=30)
    record = final.to_ocp()
    assert record["status"] == "SUCCESSFUL"
    assert OCP_TIME.match(record["finishTime"])
    for sub in record["subtasks"]:
        assert sub["status"] == "SUCCESSFUL"
        assert OCP_TIME.match(sub["finishTime"]) and OCP_TIME.match(sub["startTime"])
        # OCP shows the executing node's IP: the engine's "<ip>:<pid>" without its pid.
        assert sub["executor"] == engine.executor.rsplit(":", 1)[0]
        ipaddress.ip_address(sub["executor"])
    assert record["executor"] == engine.executor.rsplit(":", 1)[0]
    assert final.executor == engine.executor  # the engine's own identity, for its leases
    # Prepare handed the cluster it recorded to Finish through the context.
    finish = final.subtask("Finish node")
    assert finish.context.string_map["obproxy_cluster_name"] == "OBProxy001"
    assert json.loads(json.dumps(record)) == record


def test_task_and_subtask_ids_are_separate_increasing_sequences(engine: Engine) -> None:
    first = engine.submit(chain("a", "b", "c"))
    second = engine.submit(chain("d", "e"))
    assert second.id == first.id + 1
    ids = [s.id for s in first.subtasks] + [s.id for s in second.subtasks]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert [s.series_id for s in second.subtasks] == [0, 1]


def test_log_has_one_header_per_execution(engine: Engine) -> None:
    task = create_cluster(engine, sample_request())
    final = engine.run(task.id, timeout=30)
    prepare = final.subtask("Prepare obproxy install")
    text = engine.log(task.id, prepare.id)
    header = re.compile(r"^############\{EXECUTE\}\{(.+?)\}############$", re.M)
    found = header.findall(text)
    assert len(found) == 1 and OCP_TIME.match(found[0])
    assert "recorded OBProxy cluster 'OBProxy001'" in text


def test_default_database_comes_from_environment(tmp_path: Path, monkeypatch: Any) -> None:
    target = tmp_path / "env" / "x.db"
    monkeypatch.setenv("OCPTASK_DB", str(target))
    with Engine() as eng:
        eng.submit(chain("a"))
    assert target.exists()
    with Engine(str(target)) as eng:
        assert [t.status for t in eng.list()] == [TaskStatus.RUNNING]
