"""Holds: one task at a time changes a resource; the hold is taken in the submit's transaction."""

from __future__ import annotations

import threading

import pytest

from engine import Engine, ResourceBusy, TaskStatus
from engine.states import holds
from fixtures import sample_request
from tasks.obproxy import create_cluster, edit_cluster
from tests import steps
from tests.helpers import chain

BACKENDS = ["sqlite", "postgres"]


def _holding(engine: Engine, resource: str, *names: str):  # type: ignore[no-untyped-def]
    return engine.submit(
        chain(*names), also=lambda conn, task_id: holds.take(conn, resource, task_id, resource)
    )


def test_a_running_or_failed_holder_refuses_others(engine: Engine) -> None:
    first = _holding(engine, "thing:1", "A")
    with pytest.raises(ResourceBusy, match=f"task {first.id} .*RUNNING"):
        _holding(engine, "thing:1", "B")
    assert len(engine.list()) == 1  # the refused submit left nothing behind
    steps.FAIL_EXECUTE.add("A")
    assert engine.run(first.id, timeout=30).status is TaskStatus.FAILED
    with pytest.raises(ResourceBusy, match="FAILED: retry it until it succeeds, or roll it back"):
        _holding(engine, "thing:1", "B")
    assert engine.run(engine.rollback(first.id).id, timeout=30).status is TaskStatus.SUCCESSFUL
    second = _holding(engine, "thing:1", "B")  # rolled back: released
    with engine.store.begin_write() as conn:
        with pytest.raises(ResourceBusy, match=f"task {second.id}"):
            holds.check(conn, "thing:1", "thing:1")
        holds.check(conn, "thing:2", "thing:2")  # never held: free


def test_racing_submits_one_wins(db_url: str) -> None:
    """Four engines (four connection pools, as four processes would have) submit for one
    resource at the same instant, 20 rounds: exactly one wins each round."""
    engines = [Engine(db_url) for _ in range(4)]
    try:
        for round_ in range(20):
            resource = f"race:{round_}"
            barrier = threading.Barrier(len(engines))
            won: list[int] = []
            refused: list[str] = []

            threads = [
                threading.Thread(target=_race, args=(e, resource, barrier, won, refused))
                for e in engines
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            assert len(won) == 1, (won, refused)
            assert len(refused) == 3
            assert all(f"task {won[0]}" in r or "just taken" in r for r in refused), refused
    finally:
        for engine in engines:
            engine.close()


def _race(  # type: ignore[no-untyped-def]
    engine: Engine, resource: str, barrier: threading.Barrier, won: list, refused: list
) -> None:
    barrier.wait()
    try:
        won.append(_holding(engine, resource, "A").id)
    except ResourceBusy as exc:
        refused.append(str(exc))


def test_a_cluster_edit_waits_for_its_create(engine: Engine) -> None:
    import tasks.obproxy  # noqa: F401 - its tables

    task = create_cluster(engine, sample_request())
    cluster_id = 1
    with pytest.raises(
        ResourceBusy, match=f"OBProxy cluster {cluster_id} is held by task {task.id}"
    ):
        edit_cluster(engine, cluster_id, {"port": 2884})
    assert engine.run(task.id, timeout=30).status is TaskStatus.SUCCESSFUL
    assert edit_cluster(engine, cluster_id, {"port": 2884})["port"] == 2884
