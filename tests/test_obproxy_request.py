"""Create-OBProxy-cluster validation: the seed accepted as written; bad requests name the field
and write nothing at all."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine import Engine, RequestInvalid, TaskStatus
from fixtures import sample_request
from tasks.obproxy import create_cluster

Edit = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Edit:
    def edit(req: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = req
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value

    return edit


_DELETE = object()
LINK = {"clusterName": "c2", "obClusterId": 2, "username": "proxyro"}

BAD: list[tuple[str, Edit, str]] = [
    ("missing name", _set("name", _DELETE), "name"),
    ("blank name", _set("name", "   "), "name"),
    ("empty name", _set("name", ""), "name"),
    ("null name", _set("name", None), "name"),
    ("workMode", _set("workMode", "DIRECT"), "workMode"),
    ("workMode case", _set("workMode", "rs_list"), "workMode"),
    (
        "RS_LIST, two links",
        lambda r: (r.update(workMode="RS_LIST"), r["obLinks"].append(LINK)),
        "obLinks",
    ),
    ("RS_LIST, no link", lambda r: r.update(workMode="RS_LIST", obLinks=[]), "obLinks"),
    ("port 0", _set("port", 0), "port"),
    ("port 65536", _set("port", 65536), "port"),
    ("port negative", _set("port", -1), "port"),
    ("sqlPort", _set("obproxyInstallParam.sqlPort", 70000), "obproxyInstallParam.sqlPort"),
    ("exportPort", _set("obproxyInstallParam.exportPort", 0), "obproxyInstallParam.exportPort"),
    (
        "duplicate startup params",
        _set("startupParameters", [{"name": "a", "value": "1"}, {"name": "a", "value": "2"}]),
        "startupParameters[1].name",
    ),
    (
        "duplicate params",
        _set("parameters", [{"name": "b", "value": "1"}, {"name": "b", "value": "1"}]),
        "parameters[1].name",
    ),
    (
        "same param in both lists",
        lambda r: r.update(
            startupParameters=[{"name": "x", "value": "1"}],
            parameters=[{"name": "x", "value": "2"}],
        ),
        "parameters[0].name",
    ),
    ("port as a word", _set("port", "two"), "port"),
    ("port as float", _set("port", 2883.5), "port"),
    ("port as bool", _set("port", True), "port"),
    ("name as object", _set("name", {"a": 1}), "name"),
    ("obLinks not a list", _set("obLinks", {"clusterName": "x"}), "obLinks"),
    ("obClusterId as bool", _set("obLinks.0.obClusterId", True), "obLinks[0].obClusterId"),
    ("username missing", lambda r: r["obLinks"][0].pop("username"), "obLinks[0].username"),
    ("hostIds not a list", _set("obproxyInstallParam.hostIds", 1), "obproxyInstallParam.hostIds"),
    (
        "hostIds of words",
        _set("obproxyInstallParam.hostIds", ["one"]),
        "obproxyInstallParam.hostIds[0]",
    ),
    (
        "parameter value list",
        _set("parameters", [{"name": "a", "value": [1]}]),
        "parameters[0].value",
    ),
    ("address as list", _set("address", ["foo"]), "address"),
    (
        "a startup value -o cannot carry",
        _set("startupParameters", [{"name": "proxy_mem_limited", "value": "1G,2G"}]),
        "startupParameters[0].value",
    ),
    (
        # It needs a restart (obproxy's metadata), so it goes at start, in -o, too.
        "a value -o cannot carry, of a parameter that needs a restart",
        _set("parameters", [{"name": "net_accept_threads", "value": "2,3"}]),
        "parameters[0].value",
    ),
]


def _row_counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            )
            if r[0] != "audit_event"  # a refusal is recorded as an event, by design
        ]
        return {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}


def test_seed_sample_is_accepted_as_written(engine: Engine) -> None:
    task = create_cluster(engine, sample_request())
    assert task.status is TaskStatus.RUNNING


@pytest.mark.parametrize(("case", "edit", "field"), BAD, ids=[b[0] for b in BAD])
def test_bad_request_names_field_and_writes_nothing(
    engine: Engine, db_path: Path, case: str, edit: Edit, field: str
) -> None:
    create_cluster(engine, sample_request() | {"name": "existing"})  # tables exist, one row each
    before = _row_counts(db_path)
    request = sample_request()
    edit(request)
    with pytest.raises(RequestInvalid) as err:
        create_cluster(engine, request)
    assert field in err.value.fields, (case, err.value.fields)
    assert field in str(err.value)
    assert "Traceback" not in str(err.value)
    assert _row_counts(db_path) == before


def test_request_must_be_an_object(engine: Engine) -> None:
    with pytest.raises(RequestInvalid, match="must be a JSON object"):
        create_cluster(engine, [sample_request()])  # type: ignore[arg-type]


def test_duplicate_cluster_name_is_rejected(engine: Engine, db_path: Path) -> None:
    engine.run(create_cluster(engine, sample_request()).id, timeout=30)
    before = _row_counts(db_path)
    with pytest.raises(RequestInvalid) as err:
        create_cluster(engine, sample_request())
    assert err.value.fields == ["name"] and "already exists" in str(err.value)
    assert _row_counts(db_path) == before


def test_cluster_record_and_rollback(engine: Engine, db_path: Path) -> None:
    request = sample_request() | {
        "startupParameters": [{"name": "proxy_mem_limited", "value": "500M"}],
        "parameters": [{"name": "slow_query_time_threshold", "value": "1s"}],
    }
    final = engine.run(create_cluster(engine, request).id, timeout=30)
    assert final.status is TaskStatus.SUCCESSFUL
    with sqlite3.connect(db_path) as conn:
        row = conn.execute(
            "SELECT name, address, port, work_mode, ob_links, startup_parameters, parameters, "
            "task_id FROM obproxy_cluster"
        ).fetchone()
    assert row[:4] == ("OBProxy001", "foo.bar", 2883, "CONFIG_URL")
    assert '"clusterName": "hooray"' in row[4] and 'clusterId"' not in row[4]
    assert "proxy_mem_limited" in row[5] and "slow_query_time_threshold" in row[6]
    assert row[7] == final.id


def test_rollback_removes_the_cluster_record(
    engine: Engine, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks.obproxy.cluster_steps import FinishObproxyInstall

    def broken(self: object, ctx: object) -> None:
        raise RuntimeError("finish failed on purpose")

    monkeypatch.setattr(FinishObproxyInstall, "execute", broken)
    failed = engine.run(create_cluster(engine, sample_request()).id, timeout=30)
    assert failed.status is TaskStatus.FAILED
    assert _row_counts(db_path)["obproxy_cluster"] == 1
    final = engine.run(engine.rollback(failed.id).id, timeout=30)
    assert final.status is TaskStatus.SUCCESSFUL and final.operation.value == "ROLLBACK"
    assert _row_counts(db_path)["obproxy_cluster"] == 0


def test_name_is_taken_when_the_task_is_submitted(engine: Engine, db_path: Path) -> None:
    first = create_cluster(engine, sample_request())  # not run yet: the name is taken already
    before = _row_counts(db_path)
    with pytest.raises(RequestInvalid) as err:
        create_cluster(engine, sample_request())
    assert err.value.fields == ["name"] and "already exists" in str(err.value)
    assert _row_counts(db_path) == before
    assert engine.run(first.id, timeout=30).status is TaskStatus.SUCCESSFUL
    assert _row_counts(db_path)["obproxy_cluster"] == 1


HOSTED = {
    "hostIds": [1, 2],
    "sqlPort": 2883,
    "exportPort": 2884,
    "version": "obproxy-4.3.2.0-1.el7.x86_64.rpm",
}


@pytest.mark.parametrize(
    ("install", "extra", "field"),
    [
        (HOSTED | {"hostIds": [1, 7]}, {}, "obproxyInstallParam.hostIds[1]"),
        (HOSTED | {"hostIds": [1, 1]}, {}, "obproxyInstallParam.hostIds[1]"),
        ({k: v for k, v in HOSTED.items() if k != "sqlPort"}, {}, "obproxyInstallParam.sqlPort"),
        ({k: v for k, v in HOSTED.items() if k != "version"}, {}, "obproxyInstallParam.version"),
        (HOSTED | {"exportPort": 2883}, {}, "obproxyInstallParam.exportPort"),
        (
            HOSTED | {"version": "obproxy-9.9.9.9-1.el7.x86_64.rpm"},
            {},
            "obproxyInstallParam.version",
        ),
        (HOSTED | {"version": "../../etc/passwd"}, {}, "obproxyInstallParam.version"),
        (
            HOSTED,
            {"startupParameters": [{"name": "a", "value": "1,b=2"}]},
            "startupParameters[0].value",
        ),
        (
            HOSTED,
            {"startupParameters": [{"name": "a b", "value": "1"}]},
            "startupParameters[0].name",
        ),
        (HOSTED, {"parameters": [{"name": "x;drop", "value": "1"}]}, "parameters[0].name"),
    ],
)
def test_bad_host_installs_are_rejected(
    engine: Engine,
    db_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    install: dict,
    extra: dict,
    field: str,
) -> None:
    monkeypatch.setenv(
        "OCPTASK_PACKAGE_DIR", str(Path(__file__).parent.parent / "fixtures" / "packages")
    )
    for i in (1, 2):
        engine.hosts.add(
            {
                "name": f"h{i}",
                "innerIpAddress": f"127.0.0.{i + 50}",
                "username": "u",
                "password": "p",
            }
        )
    before = _row_counts(db_path)
    with pytest.raises(RequestInvalid) as err:
        create_cluster(engine, sample_request() | {"obproxyInstallParam": install} | extra)
    assert field in err.value.fields, err.value.fields
    assert _row_counts(db_path) == before
