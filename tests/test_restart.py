"""All state is in the database: a new Engine on the same file reads and continues the task."""

from __future__ import annotations

import gc
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from engine import Engine, Operation, SubtaskStatus, TaskStatus
from engine.clock import utcnow
from engine.db import records
from tests import steps
from tests.helpers import chain, one


def set_row(engine: Engine, subtask_id: int, **values: object) -> None:
    """Write a subtask row directly: how another executor's doing is pretended here."""
    with engine.store.begin_write() as conn:
        conn.execute(
            update(records.SUBTASKS).where(records.SUBTASKS.c.id == subtask_id).values(**values)
        )


def lapsed() -> object:
    return utcnow() - timedelta(seconds=1)


def test_new_engine_reads_identical_record_and_retries_to_success(db_path) -> None:  # type: ignore[no-untyped-def]
    steps.FAIL_EXECUTE.add("B")
    with Engine(str(db_path)) as first:
        failed = first.run(first.submit(chain("A", "B", "C")).id, timeout=30)
        before = failed.to_ocp()
        log_before = first.log(failed.id, failed.subtask("B").id)
    del first
    gc.collect()
    steps.FAIL_EXECUTE.clear()

    with Engine(str(db_path)) as second:
        again = second.get(failed.id)
        assert json.dumps(again.to_ocp(), sort_keys=True) == json.dumps(before, sort_keys=True)
        assert second.log(failed.id, again.subtask("B").id) == log_before
        b = again.subtask("B")
        assert b.status is SubtaskStatus.FAILED
        second.retry_subtask(failed.id, b.id)
        final = second.run(failed.id, timeout=30)
    assert final.status is TaskStatus.SUCCESSFUL
    assert [s.status for s in final.subtasks] == [SubtaskStatus.SUCCESSFUL] * 3
    assert final.subtask("B").run_time == 2
    assert steps.actions("execute") == ["A", "B", "B", "C"]


def test_database_is_plain_sqlite_in_wal_mode(db_path) -> None:  # type: ignore[no-untyped-def]
    with Engine(str(db_path)) as engine:
        engine.submit(chain("A"))
        with sqlite3.connect(db_path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
    assert {"task_instance", "subtask_instance", "subtask_log"} <= tables


def test_subtask_of_a_killed_process_is_failed_not_left_running(db_path) -> None:  # type: ignore[no-untyped-def]

    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; sys.path.insert(0, '.')\n"
                "from engine import Engine\n"
                "from tests.helpers import one\n"
                f"e = Engine({str(db_path)!r}, lease_seconds=1)\n"
                "t = e.submit(one('Poller', timeout=0))\n"
                "e.start(t.id)\n"
                "time.sleep(60)\n"
            ),
        ],
        cwd=str(Path(__file__).parent.parent),
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            time.sleep(0.1)
            if db_path.exists():
                with Engine(str(db_path)) as probe:
                    tasks = probe.list()
                    if tasks and tasks[0].subtasks[0].status is SubtaskStatus.RUNNING:
                        break
        os.kill(child.pid, signal.SIGKILL)  # the process we started, by pid
    finally:
        child.wait(10)
    with Engine(str(db_path)) as engine:
        task = engine.list()[0]
        final = engine.run(task.id, timeout=10)
        sub = final.subtasks[0]
        assert (sub.status, sub.operation) == (SubtaskStatus.FAILED, Operation.EXECUTE)
        assert f"executor {sub.executor} lost while running" in engine.log(task.id, sub.id)
        assert final.status is TaskStatus.FAILED
        engine.skip_subtask(task.id, sub.id)
        assert engine.run(task.id, timeout=10).status is TaskStatus.SUCCESSFUL


def test_leases_are_taken_renewed_and_judged(engine: Engine) -> None:
    """A running subtask holds a lease; another machine's executor is judged by it alone."""

    engine.runner.lease_seconds = 0.6  # renewed every 0.2 s
    task = engine.submit(one("Patient", timeout=0))
    engine.start(task.id)
    deadline = time.monotonic() + 5
    while engine.get(task.id).subtasks[0].status is not SubtaskStatus.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.02)

    def lease() -> object:
        with engine.store.read() as session:
            from engine.db.records import SubtaskRecord

            return session.get(SubtaskRecord, task.subtasks[0].id).acquired_until  # type: ignore[union-attr]

    first = lease()
    assert first is not None
    time.sleep(0.6)
    assert lease() > first  # type: ignore[operator]
    engine.cancel_subtask(task.id, task.subtasks[0].id)
    engine.wait(task.id, timeout=5)
    assert lease() is None  # no lease once it stopped running

    # Pretend another machine runs a subtask: a live lease keeps it, a lapsed one loses it.
    other = engine.submit(one("Record", timeout=0))
    sid = other.subtasks[0].id

    def pretend(until: object) -> None:
        set_row(engine, sid, status="RUNNING", executor="10.9.9.9:4242", acquired_until=until)

    pretend(utcnow() + timedelta(seconds=60))
    engine.recover_lost(other.id)
    assert engine.get(other.id).subtasks[0].status is SubtaskStatus.RUNNING
    pretend(utcnow() - timedelta(seconds=1))
    engine.recover_lost(other.id)
    lost = engine.get(other.id).subtasks[0]
    assert (lost.status, lost.operation) == (SubtaskStatus.FAILED, Operation.EXECUTE)
    assert "executor 10.9.9.9:4242 lost while running" in engine.log(other.id, sid)
    pretend(None)  # a lease never taken counts as lapsed
    engine.recover_lost(other.id)
    assert engine.get(other.id).subtasks[0].status is SubtaskStatus.FAILED


def test_lost_idempotent_step_runs_again_after_cleaning(engine: Engine) -> None:
    """Another executor's lapsed lease on an idempotent step: READY again as RETRY with runTime
    + 1, no record of the lost run as FAILED, and the re-run cleans up before executing."""

    task = engine.submit(one("Rerunnable", timeout=0))
    sid = task.subtasks[0].id
    set_row(engine, sid, status="RUNNING", executor="10.9.9.9:4242", acquired_until=lapsed())
    engine.recover_lost(task.id)
    again = engine.get(task.id).subtasks[0]
    assert (again.status, again.operation, again.run_time) == (
        SubtaskStatus.READY,
        Operation.RETRY,
        2,
    )
    assert again.executor is None
    final = engine.run(task.id, timeout=10)
    sub = final.subtasks[0]
    assert final.status is TaskStatus.SUCCESSFUL
    assert (sub.status, sub.operation, sub.run_time) == (
        SubtaskStatus.SUCCESSFUL,
        Operation.RETRY,
        2,
    )
    assert sub.executor == engine.executor
    # Cleaned first, then RETRY's usual rollback + execute.
    assert [a for a, _, _ in steps.JOURNAL] == ["clean after 10.9.9.9:4242", "rollback", "execute"]
    text = engine.log(task.id, sid)
    assert "executor 10.9.9.9:4242 lost while running; the step is idempotent" in text
    assert "cleaning up after the lost run on 10.9.9.9:4242" in text


def test_database_of_an_older_version_gains_new_columns(db_path: Path) -> None:
    """A column added since the database was made (nullable, as all additions are) is added
    when an Engine opens it; its tasks keep working."""
    with Engine(str(db_path)) as engine:
        old = engine.submit(chain("a"))
    conn = sqlite3.connect(db_path)
    conn.execute("ALTER TABLE subtask_instance DROP COLUMN lost_executor")
    conn.commit()
    conn.close()
    with Engine(str(db_path)) as engine:
        assert engine.run(old.id, timeout=10).status is TaskStatus.SUCCESSFUL
    conn = sqlite3.connect(db_path)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(subtask_instance)")}
    conn.close()
    assert "lost_executor" in columns


def test_a_run_whose_row_was_taken_stops_and_records_nothing(engine: Engine) -> None:
    """Its lease judged lapsed elsewhere and the subtask given to another executor: the old run
    learns it at its next renewal, stops, and leaves the new owner's row alone."""

    engine.runner.lease_seconds = 2.0  # renewed every 0.5 s
    task = engine.submit(one("Patient", timeout=0))
    sid = task.subtasks[0].id
    engine.start(task.id)
    deadline = time.monotonic() + 5
    while engine.get(task.id).subtasks[0].status is not SubtaskStatus.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    set_row(engine, sid, executor="10.9.9.9:4242")
    deadline = time.monotonic() + 5
    while engine.runner.running():
        assert time.monotonic() < deadline, "the old run did not stop"
        time.sleep(0.02)
    sub = engine.get(task.id).subtasks[0]
    assert (sub.status, sub.executor) == (SubtaskStatus.RUNNING, "10.9.9.9:4242")
    text = engine.log(task.id, sid)
    assert "its row was taken from this executor" in text
    assert "outcome not recorded" in text


def test_automatic_reruns_are_limited(engine: Engine) -> None:
    """An idempotent step lost on its third run is FAILED, not re-run forever."""

    task = engine.submit(one("Rerunnable", timeout=0))
    sid = task.subtasks[0].id
    held = {"executor": "10.9.9.9:4242", "acquired_until": lapsed()}
    set_row(engine, sid, status="RUNNING", operation="RETRY", run_time=3, **held)
    engine.recover_lost(task.id)
    sub = engine.get(task.id).subtasks[0]
    assert (sub.status, sub.run_time) == (SubtaskStatus.FAILED, 3)
    assert "not run again automatically after 3 runs" in engine.log(task.id, sid)
