"""The runner: concurrency, timeouts and cancel that steps cannot swallow, logs while running."""

from __future__ import annotations

import threading
import time

import pytest

from engine import Engine, Node, Operation, Split, SubtaskStatus, TaskStatus, Template
from tests import steps
from tests.helpers import S, chain, one, wait_for

pytestmark = pytest.mark.timeout(60)
BACKENDS = ["sqlite", "postgres"]


def _time_until_cancelled(engine: Engine, step: str) -> tuple[float, object]:
    task = engine.submit(one(step, timeout=1))
    started = time.monotonic()
    engine.start(task.id)
    final = engine.wait(task.id, timeout=10)
    return time.monotonic() - started, final


@pytest.mark.parametrize("step", ["Sleeper", "Swallower", "Poller"])
def test_timeout_ends_failed_cancel_within_3s(engine: Engine, step: str) -> None:
    elapsed, final = _time_until_cancelled(engine, step)
    sub = final.subtasks[0]  # type: ignore[attr-defined]
    assert elapsed < 3.0, f"{step} took {elapsed:.2f} s to be recorded"
    assert (sub.status, sub.operation) == (SubtaskStatus.FAILED, Operation.CANCEL)
    assert final.status is TaskStatus.FAILED  # type: ignore[attr-defined]
    assert "timed out after 1 s" in engine.log(final.id, sub.id)  # type: ignore[attr-defined]


@pytest.mark.parametrize("step", ["Swallower", "Poller"])
def test_interrupt_cannot_be_swallowed_and_cleanup_runs(engine: Engine, step: str) -> None:
    _, final = _time_until_cancelled(engine, step)
    assert steps.actions("cleanup") == [step]  # the finally block ran before the record ended
    log = engine.log(final.id, final.subtasks[0].id)  # type: ignore[attr-defined]
    assert "its cleanup has run" in log


def test_blocked_step_is_abandoned_not_waited_for(engine: Engine) -> None:
    """time.sleep(60) cannot be interrupted; the record ends anyway and the slot is freed."""
    _, final = _time_until_cancelled(engine, "Sleeper")
    assert steps.actions("cleanup") == []  # still asleep in its abandoned thread
    assert "did not stop within" in engine.log(final.id, final.subtasks[0].id)  # type: ignore[attr-defined]
    # The slot is free again: other work still runs.
    assert engine.run(engine.submit(chain("after")).id, timeout=10).status is TaskStatus.SUCCESSFUL


def test_ctx_sleep_wakes_on_timeout(engine: Engine) -> None:
    elapsed, final = _time_until_cancelled(engine, "Patient")
    assert elapsed < 2.0
    assert final.subtasks[0].operation is Operation.CANCEL  # type: ignore[attr-defined]


@pytest.mark.parametrize("step", ["Poller", "Swallower", "Patient"])
def test_cancel_running_subtask(engine: Engine, step: str) -> None:
    task = engine.submit(one(step, timeout=0))
    engine.start(task.id)
    wait_for(lambda: engine.get(task.id).subtasks[0].status is SubtaskStatus.RUNNING)
    running = engine.get(task.id).subtasks[0]
    assert running.executor == engine.executor and running.start_time is not None
    cancelling = engine.cancel_subtask(task.id, running.id)
    assert cancelling.status is SubtaskStatus.CANCELING
    final = engine.wait(task.id, timeout=5)
    sub = final.subtasks[0]
    assert (sub.status, sub.operation) == (SubtaskStatus.FAILED, Operation.CANCEL)
    assert final.status is TaskStatus.FAILED
    assert "cancel requested" in engine.log(task.id, sub.id)
    # A cancelled subtask can be retried like any failure.
    assert engine.retry_subtask(task.id, sub.id).status is SubtaskStatus.READY


def test_cancel_from_another_engine_is_picked_up(engine: Engine, db_url: str) -> None:
    task = engine.submit(one("Poller", timeout=0))
    engine.start(task.id)
    wait_for(lambda: engine.get(task.id).subtasks[0].status is SubtaskStatus.RUNNING)
    with Engine(db_url) as other:
        other.cancel_subtask(task.id, task.subtasks[0].id)
    final = engine.wait(task.id, timeout=5)
    assert final.subtasks[0].operation is Operation.CANCEL


def test_parallel_copies_run_concurrently(engine: Engine) -> None:
    steps.BARRIER = threading.Barrier(3)
    template = Template("meet", [Node(S + "Meet", "Meet", split=Split("hosts"))])
    final = engine.run(engine.submit(template, {"hosts": ["a", "b", "c"]}).id, timeout=20)
    assert final.status is TaskStatus.SUCCESSFUL


def test_log_is_readable_while_the_step_runs(engine: Engine) -> None:
    template = Template("t", [Node(S + "Patient", "P", timeout=0)])
    task = engine.submit(template)
    engine.start(task.id)
    wait_for(lambda: engine.get(task.id).subtasks[0].status is SubtaskStatus.RUNNING)
    # Lines are flushed while the step runs (every half second), not only when it ends.
    wait_for(lambda: engine.log(task.id, task.subtasks[0].id).startswith("############{EXECUTE}{"))
    engine.cancel_subtask(task.id, task.subtasks[0].id)
    engine.wait(task.id, timeout=5)


def test_run_of_two_tasks_at_once(engine: Engine) -> None:
    first = engine.submit(chain("a", "b", "c"))
    second = engine.submit(chain("x", "y"))
    engine.start(first.id)
    engine.start(second.id)
    assert engine.wait(first.id, timeout=20).status is TaskStatus.SUCCESSFUL
    assert engine.wait(second.id, timeout=20).status is TaskStatus.SUCCESSFUL


def test_parallelism_cap_holds_across_tasks(db_url: str) -> None:
    steps.GAUGE.update(now=0, peak=0)
    with Engine(db_url, parallelism=2) as engine:
        tasks = [engine.submit(one("Gauge", timeout=10)) for _ in range(6)]
        for task in tasks:
            engine.start(task.id)
        finals = [engine.wait(task.id, timeout=30) for task in tasks]
    assert all(t.status is TaskStatus.SUCCESSFUL for t in finals)
    assert steps.GAUGE["peak"] == 2


def test_step_stuck_in_a_transaction_still_times_out(engine: Engine) -> None:
    """The watchdog never waits on the database, so a step holding it cannot stall timeouts."""
    elapsed, final = _time_until_cancelled(engine, "SessionSpinner")
    assert elapsed < 3.0
    sub = final.subtasks[0]  # type: ignore[attr-defined]
    assert (sub.status, sub.operation) == (SubtaskStatus.FAILED, Operation.CANCEL)
