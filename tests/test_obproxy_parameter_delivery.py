"""Which parameters are secrets, and how each parameter reaches obproxy (at start or live): the
rules themselves, and a create that keeps its secret out of every record (no hosts: the
sandbox test ``test_obproxy_secrets`` runs them on real OBProxies)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlmodel import select

from engine import Engine, TaskStatus
from fixtures import sample_request
from tasks.obproxy import create_cluster
from tasks.obproxy.delivery import deliveries
from tasks.obproxy.parameter_info import parameter_info
from tasks.obproxy.records import ObproxyClusterRecord
from tasks.obproxy.secret_parameters import is_secret
from tasks.obproxy.spec import ServerSpec

SECRET = "S3cret-xyz"


def test_one_rule_names_the_secrets() -> None:
    for name in (
        "obproxy_sys_password",
        "OBSERVER_SYS_PASSWORD1",
        "inspector_Passwd",
        "a_password_b",
    ):
        assert is_secret(name), name
    for name in ("proxy_mem_limited", "pass", "pwd", "passw0rd", "", None):
        assert not is_secret(name), name
    # Every password obproxy's own metadata knows falls under the rule, and nothing else does.
    assert {e["name"] for e in parameter_info() if is_secret(e["name"])} == {
        "inspector_password",
        "obproxy_sys_password",
        "observer_sys_password",
        "observer_sys_password1",
    }


def test_each_parameter_goes_at_start_or_live() -> None:
    startup = [
        {"name": "proxy_mem_limited", "value": "600M"},  # startup, no restart needed: at start
        {"name": "obproxy_sys_password", "value": "sealed"},  # a secret, whatever the list: live
    ]
    parameters = [
        {"name": "net_accept_threads", "value": "4"},  # needRestart: at start
        {"name": "slow_query_time_threshold", "value": "2s"},  # live
        {"name": "no_such_parameter", "value": "1"},  # unknown to the metadata: live
        {"name": "observer_sys_password", "value": "sealed"},  # live
    ]
    ways = {d.name: d for d in deliveries(startup, parameters)}
    assert {n for n, d in ways.items() if d.at_start} == {"proxy_mem_limited", "net_accept_threads"}
    assert "needRestart" in ways["net_accept_threads"].why
    assert "metadata" in ways["no_such_parameter"].why
    assert "secret" in ways["obproxy_sys_password"].why
    link = {"clusterName": "ob", "rsList": "10.0.0.1:2881"}
    spec = ServerSpec(1, "c", "RS_LIST", [link], startup, parameters, 1, 2883, 2884, "p.rpm")
    args = spec.start_args()
    assert args[args.index("-o") + 1] == "proxy_mem_limited=600M,net_accept_threads=4"
    assert not any("password" in a for a in args)


def test_create_seals_the_secret_and_no_record_holds_it(engine: Engine, db_path: Path) -> None:
    request = sample_request() | {
        "startupParameters": [{"name": "obproxy_sys_password", "value": SECRET}],
        "parameters": [{"name": "slow_query_time_threshold", "value": "2s"}],
    }
    task = create_cluster(engine, request)
    assert engine.run(task.id, timeout=30).status is TaskStatus.SUCCESSFUL
    stored = engine.get(task.id)
    assert SECRET not in json.dumps(stored.to_ocp()) + json.dumps(stored.payload)
    assert stored.payload["request"]["startupParameters"][0]["value"] == "******"
    with engine.store.read() as session:
        row = session.exec(select(ObproxyClusterRecord)).one()
    (sealed,) = row.startup_parameters
    assert sealed["value"].startswith("fernet:")
    assert engine.store.secrets.open(sealed["value"]) == SECRET
    assert row.parameters == [{"name": "slow_query_time_threshold", "value": "2s"}]
    for path in db_path.parent.glob(db_path.name + "*"):  # the database and its journal
        assert SECRET.encode() not in path.read_bytes(), path


def test_no_refusal_of_a_create_echoes_a_secret(engine: Engine) -> None:
    """Whatever is wrong with a body that carries a password (a key in another case, a bad
    name beside it, a whole list refused), the refusal names fields, never the value."""
    import pytest

    from engine import RequestInvalid

    bodies = [
        {"StartupParameters": [{"name": "obproxy_sys_password", "value": SECRET}]},
        {"parameters": [{"Name": "obproxy_sys_password", "value": SECRET, "x": 1}]},
        {"parameters": [{"name": "obproxy_sys_password", "value": SECRET + "\x00"}]},
        {"parameters": {"name": "obproxy_sys_password", "value": SECRET}},
        {"startupParameters": [{"name": "bad name!", "value": SECRET, "Passwd": SECRET}]},
        {"parameters": [{"name": "OBPROXY_SYS_PASSWORD", "value": [SECRET]}]},
    ]
    for extra in bodies:
        with pytest.raises(RequestInvalid) as refused:
            create_cluster(engine, sample_request() | extra)
        said = json.dumps([vars(e) for e in refused.value.errors], default=str)
        assert SECRET not in said and SECRET not in str(refused.value), (extra, said)
