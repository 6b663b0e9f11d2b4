"""Who holds a running subtask: a run records its end only while its executor still holds the
row, and a join starts only after its slowest upstream. These pin the runner's guards before it
is split (issue 9): each test fails with its guard taken out."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy
from sqlalchemy import text

from engine import Engine, Node, Split, SubtaskStatus, TaskStatus, Template
from engine.clock import utcnow
from engine.states import leases
from tests import steps
from tests.helpers import S, wait_for

pytestmark = pytest.mark.timeout(60)
BACKENDS = ["sqlite", "postgres"]


def _row(other: sqlalchemy.Engine, subtask_id: int) -> tuple[str, str | None]:
    with other.connect() as conn:
        query = text("SELECT status, executor FROM subtask_instance WHERE id = :id")
        status, executor = conn.execute(query, {"id": subtask_id}).one()
    return status, executor


def test_a_run_whose_row_was_taken_records_nothing(db_url: str, other: sqlalchemy.Engine) -> None:
    """The run's lease was judged lapsed and its row given to a successor; the step then ends
    normally (before any renewal noticed). Its SUCCESSFUL must not overwrite the successor's
    row: the owner guard on recording an end."""
    template = Template("gate", [Node(S + "Gate", "G", timeout=30)])
    with Engine(db_url, parallelism=1, lease_seconds=120) as engine:  # no renewal in the test
        task = engine.submit(template)
        sub = task.subtasks[0].id
        engine.start(task.id)
        wait_for(lambda: steps.actions("start") == ["G"])
        with other.begin() as conn:
            conn.execute(
                text(
                    "UPDATE subtask_instance SET executor = 'successor', acquired_until = :t "
                    "WHERE id = :id"
                ),
                {"t": utcnow() + timedelta(seconds=60), "id": sub},
            )
        steps.GATES["G"].set()
        wait_for(lambda: "no longer this executor's" in engine.log(task.id, sub))
        assert _row(other, sub) == (SubtaskStatus.RUNNING.value, "successor")
        assert engine.get(task.id).status is TaskStatus.RUNNING


def test_a_join_waits_for_its_slowest_upstream(engine: Engine) -> None:
    template = Template(
        "join",
        [
            Node(S + "Record", "A"),
            Node(S + "Record", "Fast", upstreams=["A"]),
            Node(S + "Gate", "Slow", upstreams=["A"]),
            Node(S + "Record", "Join", upstreams=["Fast", "Slow"]),
        ],
    )
    task = engine.submit(template)
    engine.start(task.id)
    fast = task.subtask("Fast").id
    wait_for(lambda: engine.get(task.id).subtask(fast).status is SubtaskStatus.SUCCESSFUL)
    wait_for(lambda: steps.actions("start") == ["Slow"])
    time.sleep(0.3)  # time enough for a wrongly readied join to be claimed
    current = engine.get(task.id)
    assert current.subtask("Join").status is SubtaskStatus.PENDING
    assert "Join" not in steps.actions("execute")
    steps.GATES["Slow"].set()
    final = engine.wait(task.id, timeout=20)
    assert final.status is TaskStatus.SUCCESSFUL
    assert steps.actions("execute") == ["A", "Fast", "Join"]


def test_parallelism_one_runs_copies_one_after_another(db_url: str) -> None:
    """Two copies that pass only together (a barrier of two): with one slot the first times
    out at the barrier and the second starts only after the first has ended; with two slots
    both pass."""
    steps.BARRIER = threading.Barrier(2)
    template = Template("meet", [Node(S + "Meet", "Meet", timeout=2, split=Split("hosts"))])
    with Engine(db_url, parallelism=1) as engine:
        final = engine.run(engine.submit(template, {"hosts": ["a", "b"]}).id, timeout=30)
        first, second = sorted(final.subtasks, key=lambda s: s.start_time)  # type: ignore[arg-type, return-value]
        assert first.status is SubtaskStatus.FAILED
        assert "timed out" in engine.log(final.id, first.id)
        assert first.finish_time is not None and second.start_time is not None
        assert second.start_time >= first.finish_time
    steps.BARRIER = threading.Barrier(2)
    with Engine(db_url, parallelism=2) as engine:
        final = engine.run(engine.submit(template, {"hosts": ["a", "b"]}).id, timeout=30)
    assert final.status is TaskStatus.SUCCESSFUL


def test_a_claim_takes_only_a_ready_subtask(engine: Engine, other: sqlalchemy.Engine) -> None:
    """The claim's own guard: today every claim also holds the task's lock, which hides a
    missing guard; called without it, the second executor must still be refused."""
    task = engine.submit(Template("one", [Node(S + "Record", "A")]))
    sub = task.subtasks[0].id
    with engine.store.begin_write() as conn:
        assert leases.claim(conn, sub, "first:1", 30)
    with engine.store.begin_write() as conn:
        assert not leases.claim(conn, sub, "second:2", 30)
    assert _row(other, sub) == (SubtaskStatus.RUNNING.value, "first:1")
