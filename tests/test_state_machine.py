"""OCP's state machine: every legal transition, each illegal one (20003), 20004 and 20000."""

from __future__ import annotations

import pytest

from engine import (
    Engine,
    InvalidOperation,
    Node,
    Operation,
    RollbackProhibited,
    SubtaskStatus,
    TaskNotFound,
    TaskStatus,
    Template,
)
from tests import steps
from tests.helpers import S, chain, diamond

BACKENDS = ["sqlite", "postgres"]

P, R, RUN, F, OK = (
    SubtaskStatus.PENDING,
    SubtaskStatus.READY,
    SubtaskStatus.RUNNING,
    SubtaskStatus.FAILED,
    SubtaskStatus.SUCCESSFUL,
)


def statuses(task) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    return [(s.name, s.status.value, s.operation.value) for s in task.subtasks]


def failed_chain(engine: Engine, failing: str = "B"):  # type: ignore[no-untyped-def]
    steps.FAIL_EXECUTE.add(failing)
    task = engine.submit(chain("A", "B", "C"))
    return engine.run(task.id, timeout=30)


def test_submit_then_run_to_success(engine: Engine) -> None:
    task = engine.submit(chain("A", "B", "C"))
    assert task.status is TaskStatus.RUNNING and task.operation is Operation.EXECUTE
    assert [s.status for s in task.subtasks] == [R, P, P]
    assert all(s.run_time == 1 and s.operation is Operation.EXECUTE for s in task.subtasks)
    final = engine.run(task.id, timeout=30)
    assert final.status is TaskStatus.SUCCESSFUL and final.finish_time is not None
    assert [s.status for s in final.subtasks] == [OK, OK, OK]
    assert steps.actions("execute") == ["A", "B", "C"]


def test_failure_stops_downstream_and_fails_task(engine: Engine) -> None:
    final = failed_chain(engine)
    assert final.status is TaskStatus.FAILED and final.finish_time is not None
    assert statuses(final) == [
        ("A", "SUCCESSFUL", "EXECUTE"),
        ("B", "FAILED", "EXECUTE"),
        ("C", "PENDING", "EXECUTE"),
    ]
    log = engine.log(final.id, final.subtask("B").id)
    assert "RuntimeError: B was told to fail" in log and "Traceback" in log


def test_retry_task_reruns_only_failed_subtasks(engine: Engine) -> None:
    failed = failed_chain(engine)
    retried = engine.retry(failed.id)
    assert retried.status is TaskStatus.RUNNING and retried.operation is Operation.RETRY
    assert retried.finish_time is None
    b = retried.subtask("B")
    assert (b.status, b.operation, b.run_time) == (R, Operation.RETRY, 2)
    steps.FAIL_EXECUTE.clear()
    final = engine.run(failed.id, timeout=30)
    assert final.status is TaskStatus.SUCCESSFUL and final.operation is Operation.RETRY
    assert steps.actions("execute") == ["A", "B", "B", "C"]
    assert steps.actions("rollback") == ["B"]  # retry = rollback, then execute
    log = engine.log(final.id, b.id)
    assert log.count("############{EXECUTE}") == 1 and log.count("############{RETRY}") == 1


def test_retry_subtask(engine: Engine) -> None:
    failed = failed_chain(engine)
    b = engine.retry_subtask(failed.id, failed.subtask("B").id)
    assert (b.status, b.operation, b.run_time) == (R, Operation.RETRY, 2)
    assert engine.get(failed.id).status is TaskStatus.RUNNING
    steps.FAIL_EXECUTE.clear()
    final = engine.run(failed.id, timeout=30)
    assert [s.status for s in final.subtasks] == [OK, OK, OK]
    assert final.status is TaskStatus.SUCCESSFUL


def test_skip_subtask_marks_it_successful_without_running_it(engine: Engine) -> None:
    failed = failed_chain(engine)
    b = engine.skip_subtask(failed.id, failed.subtask("B").id)
    assert (b.status, b.operation) == (R, Operation.SKIP)
    assert engine.get(failed.id).status is TaskStatus.RUNNING
    final = engine.run(failed.id, timeout=30)
    assert statuses(final)[1] == ("B", "SUCCESSFUL", "SKIP")
    assert final.status is TaskStatus.SUCCESSFUL
    assert steps.actions("execute") == ["A", "B", "C"]  # B ran once: the failed run
    assert "############{SKIP}" in engine.log(final.id, b.id)


def test_rollback_returns_everything_to_pending_in_reverse_order(engine: Engine) -> None:
    failed = failed_chain(engine, failing="C")
    rolling = engine.rollback(failed.id)
    assert rolling.status is TaskStatus.RUNNING and rolling.operation is Operation.ROLLBACK
    assert statuses(rolling) == [
        ("A", "SUCCESSFUL", "ROLLBACK"),
        ("B", "SUCCESSFUL", "ROLLBACK"),
        ("C", "READY", "ROLLBACK"),
    ]
    final = engine.run(failed.id, timeout=30)
    assert final.status is TaskStatus.SUCCESSFUL and final.operation is Operation.ROLLBACK
    assert [s.status for s in final.subtasks] == [P, P, P]
    assert steps.actions("rollback") == ["C", "B", "A"]
    assert "############{ROLLBACK}" in engine.log(final.id, final.subtask("A").id)


def test_rollback_never_touches_subtasks_that_never_ran(engine: Engine) -> None:
    final = engine.run(engine.rollback(failed_chain(engine, failing="B").id).id, timeout=30)
    assert steps.actions("rollback") == ["B", "A"]
    assert final.status is TaskStatus.SUCCESSFUL


@pytest.mark.parametrize("parallelism", [1, 4])
def test_rollback_order_on_a_diamond_is_reverse_of_execution(
    db_url: str,
    parallelism: int,
) -> None:
    with Engine(db_url, parallelism=parallelism) as engine:
        steps.FAIL_EXECUTE.add("D")
        failed = engine.run(engine.submit(diamond()).id, timeout=30)
        assert failed.status is TaskStatus.FAILED
        executed = steps.actions("execute")
        engine.rollback(failed.id)
        final = engine.run(failed.id, timeout=30)
        undone = steps.actions("rollback")
        assert final.status is TaskStatus.SUCCESSFUL
        assert sorted(undone) == ["A", "B", "C", "D"]
        # Every edge u -> v: v is undone before u.
        for up, down in [("A", "B"), ("A", "C"), ("B", "D"), ("C", "D")]:
            assert undone.index(down) < undone.index(up)
        if parallelism == 1:
            assert undone == executed[::-1]


def test_failed_rollback_then_skip_and_rerollback(engine: Engine) -> None:
    failed = failed_chain(engine, failing="C")
    steps.FAIL_ROLLBACK.add("B")
    engine.rollback(failed.id)
    stuck = engine.run(failed.id, timeout=30)
    assert stuck.status is TaskStatus.FAILED and stuck.operation is Operation.ROLLBACK
    assert statuses(stuck) == [
        ("A", "SUCCESSFUL", "ROLLBACK"),
        ("B", "FAILED", "ROLLBACK"),
        ("C", "PENDING", "ROLLBACK"),
    ]
    b = stuck.subtask("B").id
    with pytest.raises(InvalidOperation):
        engine.retry(failed.id)  # a failed rollback is not retried forward
    with pytest.raises(InvalidOperation):
        engine.retry_subtask(failed.id, b)
    skipped = engine.skip_subtask(failed.id, b)
    assert (skipped.status, skipped.operation) == (R, Operation.ROLLBACK_SKIP)
    final = engine.run(failed.id, timeout=30)
    assert final.status is TaskStatus.SUCCESSFUL and final.operation is Operation.ROLLBACK
    assert [s.status for s in final.subtasks] == [P, P, P]
    assert steps.actions("rollback") == ["C", "B", "A"]


def test_rollback_can_be_asked_again_after_it_failed(engine: Engine) -> None:
    failed = failed_chain(engine, failing="C")
    steps.FAIL_ROLLBACK.add("B")
    engine.run(engine.rollback(failed.id).id, timeout=30)
    steps.FAIL_ROLLBACK.clear()
    again = engine.rollback(failed.id)
    assert again.subtask("B").status is R
    final = engine.run(failed.id, timeout=30)
    assert final.status is TaskStatus.SUCCESSFUL and [s.status for s in final.subtasks] == [P, P, P]


def test_rollback_prohibited_by_template(engine: Engine) -> None:
    steps.FAIL_EXECUTE.add("A")
    template = Template("locked", [Node(S + "Record", "A")], prohibit_rollback=True)
    task = engine.run(engine.submit(template).id, timeout=30)
    assert task.context.string_map["prohibit_rollback"] == "true"
    assert task.prohibit_rollback is True
    with pytest.raises(RollbackProhibited) as err:
        engine.rollback(task.id)
    assert err.value.code == 20004
    assert str(err.value) == f"Task {task.id} can not rollback."


def test_rollback_prohibited_only_once_a_prohibiting_subtask_ran(engine: Engine) -> None:
    nodes = [
        Node(S + "Record", "A"),
        Node(S + "Record", "B", upstreams=["A"], prohibit_rollback=True),
    ]
    template = Template("t", nodes)
    steps.FAIL_EXECUTE.add("A")
    first = engine.run(engine.submit(template).id, timeout=30)
    assert first.prohibit_rollback is False  # B never ran
    engine.rollback(first.id)
    steps.FAIL_EXECUTE.clear()
    steps.FAIL_EXECUTE.add("B")
    second = engine.run(engine.submit(template).id, timeout=30)
    assert second.prohibit_rollback is True
    with pytest.raises(RollbackProhibited):
        engine.rollback(second.id)


ILLEGAL = "This operation is not supported for the {} task in the {} state."


def test_illegal_task_operations(engine: Engine) -> None:
    running = engine.submit(chain("A"))
    for op in (engine.retry, engine.rollback):
        with pytest.raises(InvalidOperation) as err:
            op(running.id)
        assert err.value.code == 20003
        assert str(err.value) == ILLEGAL.format(running.id, "RUNNING")
    done = engine.run(running.id, timeout=30)
    for op in (engine.retry, engine.rollback):
        with pytest.raises(InvalidOperation, match="in the SUCCESSFUL state"):
            op(done.id)


def test_illegal_subtask_operations(engine: Engine) -> None:
    task = engine.submit(chain("A", "B"))
    a, b = task.subtasks
    cases = [
        (engine.retry_subtask, a, "READY"),
        (engine.retry_subtask, b, "PENDING"),
        (engine.skip_subtask, a, "READY"),
        (engine.skip_subtask, b, "PENDING"),
        (engine.cancel_subtask, a, "READY"),
        (engine.cancel_subtask, b, "PENDING"),
    ]
    for op, sub, state in cases:
        with pytest.raises(InvalidOperation) as err:
            op(task.id, sub.id)
        assert err.value.code == 20003
        assert str(err.value) == ILLEGAL.format(sub.id, state)
    done = engine.run(task.id, timeout=30)
    for op in (engine.retry_subtask, engine.skip_subtask, engine.cancel_subtask):
        with pytest.raises(InvalidOperation, match="in the SUCCESSFUL state"):
            op(done.id, a.id)
    failed = failed_chain(engine)
    with pytest.raises(InvalidOperation, match="in the FAILED state"):
        engine.cancel_subtask(failed.id, failed.subtask("B").id)
    # The state was not touched by any refused operation.
    assert engine.get(done.id).status is TaskStatus.SUCCESSFUL
    assert engine.get(failed.id).subtask("B").status is F


def test_unknown_ids_are_20000(engine: Engine) -> None:
    task = engine.submit(chain("A"))
    other = engine.submit(chain("X"))
    for call in (
        lambda: engine.get(999),
        lambda: engine.retry(999),
        lambda: engine.rollback(999),
        lambda: engine.start(999),
        lambda: engine.retry_subtask(task.id, 999),
        lambda: engine.skip_subtask(task.id, other.subtasks[0].id),
        lambda: engine.cancel_subtask(999, task.subtasks[0].id),
        lambda: engine.log(task.id, other.subtasks[0].id),
    ):
        with pytest.raises(TaskNotFound) as err:
            call()
        assert err.value.code == 20000


def conflicting() -> Template:
    """X and Y set the same stringMap key to different values; Join merges both."""
    return Template(
        "conflict",
        [
            Node(S + "SameKey", "X"),
            Node(S + "SameKey", "Y"),
            Node(S + "Record", "Join", upstreams=["X", "Y"]),
        ],
    )


def test_context_conflict_fails_the_downstream_and_can_be_skipped(engine: Engine) -> None:
    template = conflicting()
    final = engine.run(engine.submit(template).id, timeout=30)
    join = final.subtask("Join")
    assert final.status is TaskStatus.FAILED and join.status is F
    assert "disagree on stringMap['owner']" in engine.log(final.id, join.id)
    assert steps.actions("execute") == []
    engine.skip_subtask(final.id, join.id)
    assert engine.run(final.id, timeout=30).status is TaskStatus.SUCCESSFUL


def test_context_flows_to_downstreams(engine: Engine) -> None:
    template = Template(
        "flow",
        [
            Node(S + "AddKey", "X"),
            Node(S + "AddKey", "Y"),
            Node(S + "AddKey", "Join", upstreams=["X", "Y"]),
        ],
    )
    final = engine.run(engine.submit(template, {"base": "1", "seen": ["start"]}).id, timeout=30)
    join = final.subtask("Join").context
    assert join.string_map["base"] == "1"
    assert {"from_X", "from_Y", "from_Join"} <= set(join.string_map)
    assert join.list_map["seen"][0] == "start"
    assert set(join.list_map["seen"]) == {"start", "X", "Y", "Join"}
    assert final.context.string_map == {"base": "1", "prohibit_rollback": "false"}


def test_retry_after_a_context_conflict_merges_again(engine: Engine) -> None:
    template = conflicting()
    failed = engine.run(engine.submit(template).id, timeout=30)
    join = failed.subtask("Join")
    again = engine.retry(failed.id)  # still conflicting: it fails again, it is not run blind
    assert again.status is TaskStatus.FAILED and again.subtask(join.id).status is F
    assert steps.actions("execute") == []
    assert engine.log(failed.id, join.id).count("disagree on stringMap['owner']") == 2
    with pytest.raises(InvalidOperation):
        engine.retry_subtask(failed.id, failed.subtask("X").id)  # X succeeded
    single = engine.retry_subtask(failed.id, join.id)
    assert single.status is F and engine.get(failed.id).status is TaskStatus.FAILED
