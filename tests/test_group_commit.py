"""Group commit: ends that arrive while a write is in progress are recorded together after it,
in one transaction; if that transaction fails, each end is recorded alone. Either way no end is
lost, no step runs twice, no log line is lost, and nothing counts as SUCCESSFUL before the
transaction that says so has committed."""

from __future__ import annotations

from typing import Any

import pytest

from engine import Engine, Node, SubtaskStatus, TaskStatus, Template
from engine.db.store import Store
from engine.run import watchdog
from engine.states import leases
from tests import steps
from tests.helpers import S, wait_for

LEAVES = [f"leaf{i}" for i in range(4)]


def gated_fan_in() -> Template:
    nodes = [Node(S + "Record", "root")]
    nodes += [Node(S + "LoggedGate", name, upstreams=["root"]) for name in LEAVES]
    return Template("gated", [*nodes, Node(S + "Record", "join", upstreams=LEAVES)])


def finish_together(engine: Engine, db_path: Any) -> None:
    """Open the leaves' gates while another writer holds the database: the first leaf to end
    waits for the write lock with its own end, the three others queue theirs behind it."""
    wait_for(lambda: all(name in steps.GATES for name in LEAVES))
    other = Store(str(db_path))
    try:
        with other.begin_write():
            for name in LEAVES:
                steps.GATES[name].set()
            wait_for(lambda: len(engine.runner.ends) == 3)
    finally:
        other.close()


@pytest.mark.parametrize("fails", [False, True], ids=["together", "fails-then-alone"])
def test_queued_ends_are_recorded_together_or_each_alone(
    engine: Engine, db_path: Any, monkeypatch: pytest.MonkeyPatch, fails: bool
) -> None:
    together: list[int] = []  # ends recorded in a transaction with others of their task
    finish = leases.finish

    def failing(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("settles") is False:  # only a batch of several ends of one task
            together.append(args[2]["id"])
            if fails and len(together) == 2:  # the first end is written, then the disk fails
                raise RuntimeError("disk I/O error")
        return finish(*args, **kwargs)

    monkeypatch.setattr(leases, "finish", failing)
    # The leaves' lines stay buffered until their ends are recorded (no periodic flush).
    monkeypatch.setattr(watchdog, "LOG_FLUSH_INTERVAL", 3600.0)
    task = engine.submit(gated_fan_in())
    engine.start(task.id)
    finish_together(engine, db_path)
    final = engine.wait(task.id, timeout=30)
    assert final.status is TaskStatus.SUCCESSFUL
    # The three queued ends went into one transaction (failing at the second: then each alone).
    assert len(together) == (2 if fails else 3)
    assert steps.actions("execute").count("join") == 1  # promoted once, ran once
    for name in LEAVES:
        leaf = final.subtask(name)
        assert leaf.status is SubtaskStatus.SUCCESSFUL and leaf.run_time == 1
        text = engine.log(task.id, leaf.id)
        assert text.count("before the gate") == 1 and text.count("after the gate") == 1


def test_ends_left_waiting_by_a_recorder_that_failed_are_recorded(
    engine: Engine, db_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recorder fails after its first batch (say, no thread for a follow-up): the three ends
    that queued meanwhile are recorded all the same, though no further end comes to take them."""
    runner = engine.runner
    record_batch = runner._record_batch
    failures: list[int] = []
    armed = False  # once every leaf runs: the root's end (which launched them) went before

    def failing_once(batch: Any) -> Any:
        kept = record_batch(batch)
        if armed and not failures:
            failures.append(len(batch))
            raise RuntimeError("can't start new thread")
        return kept

    monkeypatch.setattr(runner, "_record_batch", failing_once)
    task = engine.submit(gated_fan_in())
    engine.start(task.id)
    wait_for(lambda: all(name in steps.GATES for name in LEAVES))
    armed = True
    finish_together(engine, db_path)
    final = engine.wait(task.id, timeout=30)
    assert failures == [1]  # the first leaf's end alone, the others queued behind it
    assert final.status is TaskStatus.SUCCESSFUL
    assert all(final.subtask(name).run_time == 1 for name in LEAVES)
