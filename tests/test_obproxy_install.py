"""Create an OBProxy cluster for real: the per-host chain over SSH on sandbox hosts."""

from __future__ import annotations

import itertools
import json
import logging
import platform
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from engine import Engine, ResourceBusy, SubtaskStatus, TaskStatus
from fixtures import api_server, install_request, register_ob_cluster
from fixtures import sandbox as sandbox_hosts
from tasks.obclusters.registry import ObClusters
from tasks.obproxy import create_cluster
from tasks.obproxy.templates import CHAIN

PACKAGES = Path(__file__).parent.parent / "fixtures" / "packages"
PROXYRO_PASSWORD = "proxyro-Secret-4711"
pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def env(sandbox: dict, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    monkeypatch.setenv("OCPTASK_PACKAGE_DIR", str(PACKAGES))
    ids = [engine.hosts.add(h).id for h in sandbox["inventory"]]
    register_ob_cluster(engine, PROXYRO_PASSWORD)
    yield {"host_ids": ids, **sandbox}
    sandbox_hosts.reset(sandbox["state"])


def proxyconfig(address: str, name: str) -> str:
    conn = pymysql.connect(
        host=address, port=2883, user="root@proxysys", password="", connect_timeout=5
    )
    try:
        with conn.cursor() as cur:
            cur.execute(f"SHOW PROXYCONFIG LIKE '{name}'")
            return cur.fetchall()[0][1]
    finally:
        conn.close()


def test_three_host_create_succeeds(
    env: dict, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    task = create_cluster(engine, install_request(env["host_ids"]))
    final = engine.run(task.id, timeout=150)
    failed = [
        (s.name, s.parallel_idx, engine.log(task.id, s.id))
        for s in final.subtasks
        if s.status is not SubtaskStatus.SUCCESSFUL
    ]
    assert final.status is TaskStatus.SUCCESSFUL, failed
    # The record: Prepare → 3 parallel chains (parallelIdx 0..2) → Finish.
    prepare, finish = final.subtask("Prepare obproxy install"), final.subtask("Finish node")
    firsts = [s for s in final.subtasks if s.name == CHAIN[0][1]]
    lasts = [s for s in final.subtasks if s.name == CHAIN[-1][1]]
    assert sorted(s.parallel_idx for s in firsts) == [0, 1, 2]
    assert set(prepare.downstreams) == {s.id for s in firsts}
    assert set(finish.upstreams) == {s.id for s in lasts}
    for idx in range(3):
        chain = [s for s in final.subtasks if s.parallel_idx == idx]
        assert [s.name for s in chain] == [name for _, name, _ in CHAIN]
        for up, down in itertools.pairwise(chain):
            assert down.upstreams == (up.id,)
    for host in env["inventory"]:
        assert proxyconfig(host["innerIpAddress"], "proxy_mem_limited") == "600M"
        assert proxyconfig(host["innerIpAddress"], "slow_query_time_threshold") == "2s"
        assert proxyconfig(host["innerIpAddress"], "rs_list").count(":2881") == 3
    # Each obproxy runs with its install's lib/ first on its library path, as the real RPM needs.
    for index in range(1, 4):
        install = (Path(env["state"]) / f"home{index}" / "obproxy-4.3.2.0").resolve()
        environs = [
            (proc / "environ").read_bytes().split(b"\0")
            for proc in Path("/proc").iterdir()
            if proc.name.isdigit() and _cwd(proc) == install
        ]
        assert environs, f"no process runs from {install}"
        wanted = f"LD_LIBRARY_PATH={install}/lib".encode()
        assert all(any(v.startswith(wanted) for v in env_) for env_ in environs), install
    # No credential anywhere in the records or logs.
    record = json.dumps(final.to_ocp())
    logs = "".join(engine.log(task.id, s.id) for s in final.subtasks)
    assert PROXYRO_PASSWORD not in record + logs + caplog.text  # records, subtask and app logs
    # Credentials are encrypted at rest: the database file itself never holds the password.
    db = Path(engine.store.url.removeprefix("sqlite:///"))
    for path in db.parent.glob(db.name + "*"):
        assert PROXYRO_PASSWORD.encode() not in path.read_bytes(), path


def _cwd(proc: Path) -> Path | None:
    try:
        return (proc / "cwd").resolve(strict=True)
    except OSError:  # gone meanwhile, or not ours to look at
        return None


def servers(engine: Engine) -> list[str]:
    import sqlite3

    with sqlite3.connect(engine.store.url.removeprefix("sqlite:///")) as conn:
        return [r[0] for r in conn.execute("SELECT status FROM obproxy_server ORDER BY host_id")]


def chain_logs(engine: Engine, task_id: int, idx: int, name: str) -> str:
    task = engine.get(task_id)
    sub = next(s for s in task.subtasks if s.parallel_idx == idx and s.name == name)
    return engine.log(task_id, sub.id)


def test_dead_host_fails_alone_then_retry_finishes_it(env: dict, engine: Engine) -> None:
    sandbox_hosts.stop_host(2, env["state"])
    try:
        failed = engine.run(
            create_cluster(engine, install_request(env["host_ids"])).id, timeout=150
        )
    finally:
        sandbox_hosts.start_host(2, env["state"])
    assert failed.status is TaskStatus.FAILED
    broken = [s for s in failed.subtasks if s.status is SubtaskStatus.FAILED]
    assert [(s.name, s.parallel_idx) for s in broken] == [(CHAIN[0][1], 1)]
    log = engine.log(failed.id, broken[0].id)
    assert "sandbox-2 (127.0.0.112:2222): cannot connect" in log
    for idx in (0, 2):  # hosts 1 and 3 went all the way
        chain = [s for s in failed.subtasks if s.parallel_idx == idx]
        assert all(s.status is SubtaskStatus.SUCCESSFUL for s in chain)
    assert failed.subtask("Finish node").status is SubtaskStatus.PENDING

    assert servers(engine) == ["RUNNING", "UNAVAILABLE", "RUNNING"]
    final = engine.run(engine.retry(failed.id).id, timeout=150)
    assert final.status is TaskStatus.SUCCESSFUL
    assert servers(engine) == ["RUNNING", "RUNNING", "RUNNING"]
    install = "Install rpm by package and version"
    assert install in [name for _, name, _ in CHAIN]
    for idx in (0, 2):  # nothing ran again on hosts 1 and 3: one execution, one upload
        log = chain_logs(engine, final.id, idx, install)
        assert log.count("############{") == 1 and log.count("uploaded") == 1
    assert "uploaded" in chain_logs(engine, final.id, 1, install)


def test_changed_host_key_fails_that_chain_only(env: dict, engine: Engine) -> None:
    first, second = env["inventory"][:2]
    wrong = first["hostKey"].split(" ", 1)[0] + " " + second["hostKey"].split(" ", 1)[1]
    engine.hosts.add(first | {"hostKey": wrong})
    final = engine.run(create_cluster(engine, install_request(env["host_ids"])).id, timeout=150)
    broken = [s for s in final.subtasks if s.status is SubtaskStatus.FAILED]
    assert [(s.name, s.parallel_idx) for s in broken] == [(CHAIN[0][1], 0)]
    assert "sandbox-1 (127.0.0.111:2222): host key changed" in engine.log(final.id, broken[0].id)
    assert not any(Path(env["state"], "home1").iterdir())  # nothing was installed there


def test_silent_host_times_out_and_others_finish(env: dict, engine: Engine) -> None:
    import time

    from tests.helpers import silent_listener

    silent = engine.hosts.add(dict(env["inventory"][0], name="silent", innerIpAddress="127.0.0.30"))
    started = time.monotonic()
    with silent_listener("127.0.0.30"):
        final = engine.run(
            create_cluster(engine, install_request([*env["host_ids"][1:], silent.id])).id,
            timeout=150,
        )
    broken = [s for s in final.subtasks if s.status is SubtaskStatus.FAILED]
    assert [(s.name, s.parallel_idx) for s in broken] == [(CHAIN[0][1], 2)]
    assert "silent (127.0.0.30:2222): no SSH greeting within 10 s" in engine.log(
        final.id, broken[0].id
    )
    assert time.monotonic() - started < 10 + 5 + 5  # connect timeout + 5 s, + the other chains
    assert all(
        s.status is SubtaskStatus.SUCCESSFUL for s in final.subtasks if s.parallel_idx in (0, 1)
    )


def _user_processes(username: str, pattern: str) -> str:
    result = subprocess.run(
        ["pgrep", "-u", username, "-a", "-f", pattern], capture_output=True, text=True
    )
    return result.stdout.strip()


def test_hung_start_is_cancelled_and_leaves_nothing_running(env: dict, engine: Engine) -> None:
    import dataclasses
    import time

    from engine import Operation, Template
    from tasks.obproxy.templates import INSTALL_OBPROXY

    start_name = "Start obproxy process"
    quick = Template(
        INSTALL_OBPROXY.name,
        [
            dataclasses.replace(n, timeout=2) if n.name == start_name else n
            for n in INSTALL_OBPROXY.nodes
        ],
    )
    request = install_request(env["host_ids"][:1])
    request["startupParameters"].append({"name": "standin_hang_seconds", "value": "60"})
    final = engine.run(create_cluster(engine, request, template=quick).id, timeout=60)
    start = final.subtask(start_name)
    assert (start.status, start.operation) == (SubtaskStatus.FAILED, Operation.CANCEL)
    deadline = time.monotonic() + 5
    while _user_processes("ocptst1", "[s]tandin_hang_seconds") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _user_processes("ocptst1", "[s]tandin_hang_seconds") == ""
    assert _user_processes("ocptst1", "[b]in/obproxy") == ""


def test_rollback_of_a_failed_create_undoes_everything(env: dict, engine: Engine) -> None:
    task = create_cluster(engine, install_request(env["host_ids"]))
    ObClusters(engine).remove(1)  # the password step finds no password: the chain fails there
    failed = engine.run(task.id, timeout=150)
    assert failed.status is TaskStatus.FAILED
    assert {s.name for s in failed.subtasks if s.status is SubtaskStatus.FAILED} == {
        "Set obproxy user and password for connect"
    }
    assert all(_user_processes(h["username"], "[b]in/obproxy") for h in env["inventory"])
    final = engine.run(engine.rollback(failed.id).id, timeout=150)
    assert final.status is TaskStatus.SUCCESSFUL and final.operation.value == "ROLLBACK"
    assert all(s.status is SubtaskStatus.PENDING for s in final.subtasks)
    for index, host in enumerate(env["inventory"], start=1):
        assert _user_processes(host["username"], "[b]in/obproxy") == ""
        assert not list(Path(env["state"], f"home{index}").glob("obproxy-*"))
        assert not list(Path(env["state"], f"home{index}", ".ocptask", "packages").glob("*"))
    import sqlite3

    db = engine.store.url.removeprefix("sqlite:///")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM obproxy_server").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM obproxy_cluster").fetchone()[0] == 0


# Values that run ``touch MARKER`` if they reach a shell line unquoted, inside naive single
# quotes, inside double quotes, or as a backtick: each marker proves one kind of escape absent.
HOSTILE = {
    "proxy_tag": "x; touch /tmp/ocptask-pwned-bare #",
    "hostile_squote": "x'; touch /tmp/ocptask-pwned-squote; echo '",
    "hostile_subshell": "$(touch /tmp/ocptask-pwned-subshell)",
    "hostile_backtick": "`touch /tmp/ocptask-pwned-backtick`",
}
MARKERS = [
    Path(f"/tmp/ocptask-pwned-{kind}") for kind in ("bare", "squote", "subshell", "backtick")
]


def test_hostile_values_are_passed_literally(
    env: dict, engine: Engine, db_url: str, tmp_path: Path
) -> None:
    """Startup parameters travel on obproxy's command line over SSH; the cluster name inside
    the config URL (which the OBProxy then asks a real config server for: ``ocptask serve``
    on the same database); non-startup parameters through ALTER PROXYCONFIG. Each arrives as
    given."""
    for marker in MARKERS:
        marker.unlink(missing_ok=True)
    request = install_request(env["host_ids"][:1], workMode="CONFIG_URL")
    request["name"] = "$(touch /tmp/ocptask-pwned-subshell)"
    request["startupParameters"] = [{"name": k, "value": v} for k, v in HOSTILE.items()]
    sql_hostile = "x'; ALTER PROXYCONFIG SET proxy_tag = 'pwned"
    request["parameters"] = [{"name": "client_tag", "value": sql_hostile}]
    port = api_server.free_port()
    url = f"http://127.0.0.1:{port}"
    server = api_server.start(db_url, tmp_path / "config.log", "--no-run", port=port)
    try:
        with Engine(db_url, parallelism=4, public_url=url) as configured:
            final = configured.run(create_cluster(configured, request).id, timeout=150)
    finally:
        assert server.stop() == 0
    assert final.status is TaskStatus.SUCCESSFUL
    assert [m for m in MARKERS if m.exists()] == []
    address = env["inventory"][0]["innerIpAddress"]
    for name, value in HOSTILE.items():
        assert proxyconfig(address, name) == value
    assert proxyconfig(address, "client_tag") == sql_hostile
    assert "touch" in proxyconfig(address, "obproxy_config_server_url")


def test_unpinned_host_needs_explicit_trust_on_first_use(env: dict, engine: Engine) -> None:
    first = env["inventory"][0]
    unpinned = {k: v for k, v in first.items() if k != "hostKey"}
    host = engine.hosts.add(unpinned)  # same name: replaces the pinned entry
    refused = engine.run(create_cluster(engine, install_request([host.id])).id, timeout=60)
    broken = [s for s in refused.subtasks if s.status is SubtaskStatus.FAILED]
    assert "no host key is pinned" in engine.log(refused.id, broken[0].id)
    assert engine.hosts.get(host.id).status.value == "OFFLINE"
    # The failed create holds its host until it is rolled back (or retried to success).
    with pytest.raises(ResourceBusy, match=f"host {host.id} is held by task {refused.id}"):
        create_cluster(engine, install_request([host.id]) | {"name": "tofu"})
    assert engine.run(engine.rollback(refused.id).id, timeout=60).status is TaskStatus.SUCCESSFUL

    engine.hosts.add(unpinned | {"trustOnFirstUse": True})
    request = install_request([host.id]) | {"name": "tofu"}
    final = engine.run(create_cluster(engine, request).id, timeout=60)
    assert final.status is TaskStatus.SUCCESSFUL
    pinned = engine.hosts.get(host.id)
    assert pinned.host_key is not None
    assert pinned.host_key.split()[1:] == first["hostKey"].split()[1:]
    assert pinned.status.value == "ONLINE"  # reached, and its OBProxy runs there
    assert [(s.type.value, s.name) for s in pinned.services] == [("OB_PROXY", "tofu")]
    assert pinned.architecture == platform.machine()  # read by the chain's first command
