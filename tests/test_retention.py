"""Retention: a purge removes old finished tasks with their subtasks, logs and subject rows,
keeps every task still needed, leaves audit events alone, and the database stops growing."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from cli import app
from engine import Engine, Node, ResourceBusy, Step, StepContext, TaskNotFound, TaskStatus, Template
from engine import retention as _retention
from engine.audit import EVENTS
from engine.clock import utcnow
from engine.db.records import LOGS, SUBTASKS, TASKS
from engine.db.subjects import SUBJECTS
from engine.errors import RequestInvalid
from engine.states import holds
from fixtures.daemons import start as start_daemon
from fixtures.daemons import stop_all
from tasks.obclusters.registry import ObClusters
from tasks.obproxy.records import ObproxyClusterRecord
from tests import steps
from tests.helpers import chain, wait_for

BACKENDS = ["sqlite", "postgres"]
runner = CliRunner()


class Noisy(Step):
    """Writes 16 KiB of log: a purge has something to give back."""

    def execute(self, ctx: StepContext) -> None:
        for i in range(64):
            ctx.log.info(f"line {i:03d} " + "x" * 240)


def _run(engine: Engine, args: dict[str, str] | None = None, payload: Any = None) -> int:
    task = engine.submit(chain("A", "B"), args, payload=payload)
    return engine.run(task.id, timeout=30).id


def _host(engine: Engine) -> int:
    entry = {"name": "h1", "innerIpAddress": "192.0.2.1", "username": "admin"}
    return engine.hosts.add(entry | {"privateKeyPath": "/nonexistent/id_ed25519"}).id


def _exists(engine: Engine, task_id: int) -> bool:
    try:
        engine.get(task_id)
    except TaskNotFound:
        return False
    return True


def _rows(engine: Engine, task_ids: list[int]) -> tuple[int, int, int]:
    """Subtasks, log rows and subject rows of these tasks."""
    with engine.store.engine.connect() as conn:
        subs = select(SUBTASKS.c.id).where(SUBTASKS.c.task_id.in_(task_ids))
        count = func.count()
        return (
            conn.execute(select(count).where(SUBTASKS.c.task_id.in_(task_ids))).scalar_one(),
            conn.execute(select(count).where(LOGS.c.subtask_id.in_(subs))).scalar_one(),
            conn.execute(select(count).where(SUBJECTS.c.task_id.in_(task_ids))).scalar_one(),
        )


def _events(engine: Engine) -> list[tuple[int, str]]:
    with engine.store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(EVENTS.c.id, EVENTS.c.operation_event))]


def test_a_purge_removes_the_old_and_keeps_each_kind_of_protected_task(engine: Engine) -> None:
    host = _host(engine)
    ObClusters(engine).add(1, "hooray", rs_list="10.0.0.1:2881", password="proxyro-pw")
    link = {"request": {"obLinks": [{"obClusterId": 1, "clusterName": "hooray"}]}}

    plain = [_run(engine) for _ in range(3)]
    host_old = _run(engine, {"host_id": str(host)})
    host_last = _run(engine, {"host_id": str(host)})
    gone_host = _run(engine, {"host_id": "999"})  # about a host that no longer exists
    ob_old = _run(engine, payload=link)
    ob_last = _run(engine, payload=link)
    creator = _run(engine)  # the OBProxy cluster's create task: its row points at it
    with engine.store.write() as session:
        cluster = ObproxyClusterRecord(
            name="p1", work_mode="RS_LIST", creator="admin", task_id=creator
        )
        session.add(cluster)
        session.flush()
        proxy_id = cluster.id
    proxy_old = _run(engine, {"obproxy_cluster_id": str(proxy_id)})
    proxy_last = _run(engine, {"obproxy_cluster_id": str(proxy_id)})
    steps.FAIL_EXECUTE.add("A")
    failed = _run(engine)  # another status than the one asked for
    held = engine.submit_batch(  # a batch holding a resource together; both FAILED
        chain("A", "B"),
        [(None, None), (None, None)],
        also=lambda conn, ids: holds.take(conn, "thing:1", ids[0], "thing 1", batch=ids),
    )
    held_ids = [engine.run(t.id, timeout=30).id for t in held]
    running = _run(engine)
    steps.FAIL_EXECUTE.clear()
    engine.retry(running)  # RUNNING again; its old finish time put back as a racing read would
    with engine.store.begin_write() as conn:
        conn.execute(
            update(TASKS).where(TASKS.c.id == running).values(finish_time=TASKS.c.create_time)
        )
    time.sleep(0.01)
    cutoff = utcnow()
    time.sleep(0.01)
    newer = _run(engine)
    events_before = _events(engine)
    gone = [*plain, host_old, gone_host, ob_old, proxy_old]
    assert _rows(engine, gone)[0] == 2 * len(gone) and _rows(engine, gone)[1] > 0
    assert _rows(engine, gone)[2] == 4  # host_old, gone_host, ob_old, proxy_old

    dry = engine.purge(cutoff, ["SUCCESSFUL"], dry_run=True)
    assert dry.tasks == len(gone) and all(_exists(engine, i) for i in gone)
    report = engine.purge(cutoff, ["SUCCESSFUL"])

    assert not any(_exists(engine, i) for i in gone)
    assert _rows(engine, gone) == (0, 0, 0)
    assert (report.tasks, report.subtasks, report.subjects) == (len(gone), 2 * len(gone), 4)
    assert report.log_rows == dry.log_rows > 0
    kept = [host_last, ob_last, creator, proxy_last, failed, *held_ids, running, newer]
    assert all(_exists(engine, i) for i in kept)
    assert engine.get(running).status is TaskStatus.RUNNING
    assert report.kept == {_retention.LAST: 3, _retention.REFERENCED: 1}
    # The FAILED ones (and the held ones among them) were not asked for; now they are:
    again = engine.purge(cutoff)
    assert again.tasks == 1 and not _exists(engine, failed)
    assert again.kept == {_retention.HOLD: 2, _retention.LAST: 3, _retention.REFERENCED: 1}
    assert all(_exists(engine, i) for i in held_ids)
    # Audit events: untouched, and each purge is one of ours.
    events = _events(engine)
    assert events[: len(events_before)] == events_before
    assert [e for _, e in events[len(events_before) :]] == ["PURGE_TASKS", "PURGE_TASKS"]


def test_bad_input_is_refused_and_nothing_goes(engine: Engine) -> None:
    task_id = _run(engine)
    for when, statuses, field in [
        (utcnow() + timedelta(days=1), None, "finishedBefore"),
        (utcnow(), ["RUNNING"], "status"),
        (utcnow(), ["DONE"], "status"),
    ]:
        with pytest.raises(RequestInvalid) as refused:
            engine.purge(when, statuses)
        assert refused.value.fields == [field]
    assert _exists(engine, task_id)


def test_one_purge_at_a_time(db_url: str, engine: Engine) -> None:
    _run(engine)
    with Engine(db_url) as other, _retention._one_purge(other.store):
        with pytest.raises(ResourceBusy, match="another purge"):
            engine.purge(utcnow())
    assert engine.purge(utcnow()).tasks == 1  # free again once the other let go


@pytest.mark.parametrize("older", [False, True], ids=["new-database", "auto-vacuum-none"])
def test_the_database_file_stops_growing_across_purge_cycles(db_path: Path, older: bool) -> None:
    """Sizes, not timings: 5 cycles of 40 tasks made then purged; the file after the 5th is no
    larger than after the 2nd. A database made before incremental auto-vacuum reuses its freed
    pages instead of giving them back."""
    if older:
        with sqlite3.connect(db_path) as made:
            made.execute("CREATE TABLE made_before (x)")  # auto_vacuum is fixed from here on
    sizes = []
    with Engine(str(db_path)) as engine:
        with engine.store.engine.connect() as conn:
            mode = conn.exec_driver_sql("PRAGMA auto_vacuum").scalar()
        assert mode == (0 if older else 2)  # NONE, INCREMENTAL
        noisy = Template(
            "noisy",
            [Node(f"{__name__}.Noisy", "A"), Node(f"{__name__}.Noisy", "B", upstreams=["A"])],
        )
        for _ in range(5):
            tasks = [engine.submit(noisy).id for _ in range(40)]
            for task_id in tasks:
                assert engine.run(task_id, timeout=60).status is TaskStatus.SUCCESSFUL
            report = engine.purge(utcnow())
            assert report.tasks == 40 and report.size_after is not None
            sizes.append(report.size_after)
    assert sizes[4] <= sizes[1], sizes


# -- the command line ------------------------------------------------------------------------


def test_purge_command(db_path: Path) -> None:
    with Engine(str(db_path)) as engine:
        old = [_run(engine) for _ in range(2)]
    db = ["--db", str(db_path)]
    for args, said in [
        (["--finished-before", "banana"], "--finished-before 'banana': give an age"),
        (["--finished-before", "2999-01-01"], "--finished-before 2999-01-01: is in the future"),
        (["--finished-before", "0s", "--status", "RUNNING"], "--status: RUNNING is never purged"),
        (["--finished-before", "0s", "--status", "DONE"], "--status: DONE is no task status"),
    ]:
        refused = runner.invoke(app, ["task", "purge", *args, *db])
        assert refused.exit_code == 2, refused.output
        assert said in refused.stderr and len(refused.stderr.splitlines()) == 1
    dry = runner.invoke(app, ["task", "purge", "--finished-before", "0s", "--dry-run", *db])
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.startswith("would remove 2 tasks (4 subtasks, ")
    assert f"tasks {old[0]}, {old[1]}" in dry.stdout and "nothing removed (--dry-run)" in dry.stdout
    listed = runner.invoke(app, ["task", "list", "--json", *db])
    assert [t["id"] for t in json.loads(listed.stdout)] == old[::-1]
    done = runner.invoke(
        app, ["task", "purge", "--finished-before", "0s", "--status", "successful", "--json", *db]
    )
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert (report["tasks"], report["subtasks"], report["statuses"]) == (2, 4, ["SUCCESSFUL"])
    assert report["sizeBefore"] > 0 and report["sizeAfter"] > 0
    assert json.loads(runner.invoke(app, ["task", "list", "--json", *db]).stdout) == []


def test_purge_command_is_a_database_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCPTASK_DB", raising=False)
    monkeypatch.setenv("OCPTASK_SERVER", "http://127.0.0.1:9")
    refused = runner.invoke(app, ["task", "purge", "--finished-before", "90d"])
    assert refused.exit_code == 2 and "give --db" in refused.stderr


# -- the scheduled purge ---------------------------------------------------------------------


@pytest.fixture
def daemons() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    stop_all(started, gently=True)


def test_daemons_purge_on_a_schedule(
    db_url: str, daemons: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """Two daemons on one database, purging what finished over a second ago, every 0.2 s."""
    with Engine(db_url) as engine:
        old = _run(engine)
        last = _run(engine, {"host_id": str(_host(engine))})
        time.sleep(1.2)  # both finished over a second ago (a wait for a state, no timed assertion)
        options = ["--purge-finished-after", "1s", "--purge-every", "0.2"]
        daemons.extend(
            start_daemon(db_url, f"purger-{i}", tmp_path / f"{i}.log", *options) for i in range(2)
        )
        wait_for(lambda: not _exists(engine, old), timeout=30)
        assert _exists(engine, last)  # the last record of a host that exists
        purges = [e for _, e in _events(engine) if e == "PURGE_TASKS"]
        assert purges == ["PURGE_TASKS"]  # one removed it; empty turns record nothing


def test_scheduled_purge_options_are_checked(db_path: Path) -> None:
    bad = runner.invoke(
        app, ["daemon", "--db", str(db_path), "--purge-finished-after", "ninety days"]
    )
    assert bad.exit_code == 2 and "--purge-finished-after 'ninety days'" in bad.stderr
    no_run = runner.invoke(
        app, ["serve", "--db", str(db_path), "--no-run", "--purge-finished-after", "90d"]
    )
    assert no_run.exit_code == 2 and "needs the daemon" in no_run.stderr
