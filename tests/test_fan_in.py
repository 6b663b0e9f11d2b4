"""A join (a node waiting on many upstreams) is looked at whole once, when its last upstream
succeeds, not once per upstream: its ``waiting`` count goes down in the transaction where each
upstream succeeds. Failures, retries, skips and rows made before the count keep their meaning."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from engine import Engine, Node, SubtaskStatus, TaskStatus, Template
from engine.states import transitions
from tests import steps
from tests.helpers import S

BACKENDS = ["sqlite", "postgres"]


def join(children: int) -> Template:
    names = [f"child{i}" for i in range(children)]
    nodes = [Node(S + "Record", "root")]
    nodes += [Node(S + "Record", n, upstreams=["root"]) for n in names]
    return Template("join", [*nodes, Node(S + "Record", "join", upstreams=names)])


def waiting(engine: Engine, subtask_id: int) -> int | None:
    with engine.store.engine.connect() as conn:
        query = text("SELECT waiting FROM subtask_instance WHERE id = :id")
        return conn.execute(query, {"id": subtask_id}).scalar()


def test_a_join_reads_its_upstreams_once(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A join of 40 upstreams is looked at whole exactly once, when the last of them succeeds:
    their rows (with contexts) are read 40 times at most in all. Looked at after each of them,
    it would read 40 * 41 / 2 = 820; looked at twice (say at a count of 1, then of 0), some 80."""
    looks: list[list[int]] = []  # each read of upstream rows with their contexts
    rows = transitions._rows

    def counted(conn: Any, ids: Any, *, with_context: bool = False) -> Any:
        ids = list(ids)
        if with_context and ids:
            looks.append(ids)
        return rows(conn, ids, with_context=with_context)

    monkeypatch.setattr(transitions, "_rows", counted)
    task = engine.submit(join(40))
    last = task.subtask("join")
    assert waiting(engine, last.id) == 40 and waiting(engine, task.subtask("root").id) == 0
    final = engine.run(task.id)
    assert final.status is TaskStatus.SUCCESSFUL
    children = {task.subtask(f"child{i}").id for i in range(40)}
    at_the_join = [ids for ids in looks if set(ids) & children]
    assert len(at_the_join) == 1  # looked at whole once
    assert sum(len(ids) for ids in looks) <= 40  # the children's root is the row just written
    merged = final.subtask("join").context.string_map
    assert all(merged[f"done_child{i}"] == "yes" for i in range(40))  # every context merged
    assert waiting(engine, last.id) == 0


def test_a_failed_upstream_holds_the_join_until_retried_or_skipped(engine: Engine) -> None:
    steps.FAIL_EXECUTE.add("child1")
    task = engine.submit(join(3))
    failed = engine.run(task.id)
    assert failed.status is TaskStatus.FAILED
    assert failed.subtask("join").status is SubtaskStatus.PENDING
    assert waiting(engine, task.subtask("join").id) == 1  # only child1 is missing
    engine.retry(task.id)  # child1 fails again: the join still waits on it alone
    again = engine.run(task.id)
    assert again.status is TaskStatus.FAILED and waiting(engine, task.subtask("join").id) == 1
    engine.skip_subtask(task.id, task.subtask("child1").id)  # skipped counts as succeeded
    final = engine.run(task.id)
    assert final.status is TaskStatus.SUCCESSFUL
    assert final.subtask("join").status is SubtaskStatus.SUCCESSFUL


def test_rows_made_before_the_count_still_join(engine: Engine) -> None:
    """A database from before the column: its rows have no count, and are looked at whole."""
    task = engine.submit(join(5))
    with engine.store.engine.begin() as conn:
        conn.execute(text("UPDATE subtask_instance SET waiting = NULL WHERE task_id = :t"),
                     {"t": task.id})  # fmt: skip
    final = engine.run(task.id)
    assert final.status is TaskStatus.SUCCESSFUL
    assert steps.actions("execute").count("join") == 1
