"""Several daemons on one PostgreSQL: every subtask runs exactly once, work is shared, SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy

from engine import Engine, Node, Operation, SubtaskStatus, TaskStatus, Template
from fixtures.daemons import exit_code, stop_all
from fixtures.daemons import start as start_daemon
from tests.helpers import S

ROOT = Path(__file__).parent.parent
pytestmark = pytest.mark.timeout(300)
BACKENDS = ["postgres"]
TASKS = 150


def chain20() -> Template:
    names = [f"step{i:02d}" for i in range(20)]
    return Template(
        "journal-chain",
        [
            Node(S + "Journal", n, timeout=60, upstreams=[names[i - 1]] if i else [])
            for i, n in enumerate(names)
        ],
    )


@pytest.fixture
def daemons() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    stop_all(started)


def test_three_daemons_run_every_subtask_exactly_once(
    db_url: str, daemons: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    with Engine(db_url) as engine:
        with engine.store.engine.begin() as conn:
            conn.execute(
                sqlalchemy.text("CREATE TABLE journal (subtask_id integer, executor text)")
            )
        # All three serving before any work exists, so that all can take some.
        daemons.extend(
            start_daemon(db_url, f"daemon-{i}", tmp_path / f"{i}.log", "--parallelism", "4")
            for i in range(3)
        )
        tasks = [engine.submit(chain20()).id for _ in range(TASKS)]
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if all(t.status is not TaskStatus.RUNNING for t in engine.list(limit=500)):
                break
            time.sleep(0.5)
        finals = engine.list(limit=200)
        with engine.store.engine.connect() as conn:
            rows = conn.execute(
                sqlalchemy.text(
                    "SELECT subtask_id, count(*), min(executor) FROM journal GROUP BY subtask_id"
                )
            ).all()
    assert len(finals) == len(tasks) == TASKS
    assert all(t.status is TaskStatus.SUCCESSFUL for t in finals)
    assert len(rows) == TASKS * 20
    assert all(count == 1 for _, count, _ in rows)  # never twice
    assert {executor for *_, executor in rows} == {"daemon-0", "daemon-1", "daemon-2"}
    executors = {s.executor for t in finals for s in t.subtasks}
    assert executors == {"daemon-0", "daemon-1", "daemon-2"}
    assert {t.executor for t in finals} <= executors  # the task names a daemon that ran it


def test_sigterm_exits_zero_and_hands_back_what_did_not_finish(
    db_url: str, daemons: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """Past the grace period: an idempotent step is READY again (RETRY, runTime 2) for another
    daemon; any other is FAILED for the operator. Nothing is left RUNNING."""
    with Engine(db_url) as engine:
        slow = engine.submit(Template("slow", [Node(S + "Patient", "wait", timeout=0)]))
        again = engine.submit(Template("again", [Node(S + "PatientRerunnable", "w", timeout=0)]))
        daemons.append(start_daemon(db_url, "stopper", tmp_path / "d.log", "--grace", "1"))
        deadline = time.monotonic() + 20
        while any(
            engine.get(t.id).subtasks[0].status is not SubtaskStatus.RUNNING for t in (slow, again)
        ):
            assert time.monotonic() < deadline, "the daemon never started the steps"
            time.sleep(0.1)
        started = time.monotonic()
        daemons[0].send_signal(signal.SIGTERM)
        assert exit_code(daemons[0], 15, tmp_path / "d.log") == 0
        assert time.monotonic() - started < 1 + 5
        failed = engine.get(slow.id).subtasks[0]
        assert failed.status is SubtaskStatus.FAILED
        assert engine.get(slow.id).status is TaskStatus.FAILED
        text = engine.log(slow.id, failed.id)
        assert "daemon stopping" in text and "executor stopper stopped before the step" in text
        ready = engine.get(again.id).subtasks[0]
        assert (ready.status, ready.operation, ready.run_time) == (
            SubtaskStatus.READY,
            Operation.RETRY,
            2,
        )
        assert ready.executor is None
        assert engine.get(again.id).status is TaskStatus.RUNNING  # waiting for a daemon


TICK = Template("tick", [Node(S + "Noop", "tick", timeout=10)])


def test_interval_definition_creates_scheduled_tasks_until_disabled(
    db_url: str, daemons: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    with Engine(db_url) as engine:
        definition = engine.definitions.add("tick", "tests.test_daemon:TICK", interval=2)
        daemons.append(start_daemon(db_url, "ticker", tmp_path / "d.log"))

        def scheduled() -> list[dict]:
            return [t.to_ocp() for t in engine.list(limit=100)]

        deadline = time.monotonic() + 20
        while len(scheduled()) < 3:
            assert time.monotonic() < deadline, "fewer than 3 fires in 20 s"
            time.sleep(0.2)
        engine.definitions.disable(definition.id)
        time.sleep(0.5)  # a fire already under way may still land
        count = len(scheduled())
        time.sleep(4.5)  # two more intervals: nothing more
        records = scheduled()
    assert len(records) == count
    assert {(r["type"], r["taskDefinitionId"]) for r in records} == {("SCHEDULED", definition.id)}
    assert {r["status"] for r in records} == {"SUCCESSFUL"}  # the daemon ran them too
