"""Two creates of one name never both pass: the cluster row is written in the submit's own
transaction, so the loser is refused at once (the field named), in any process, on SQLite and
PostgreSQL, and no task is left to fail later at Prepare."""

from __future__ import annotations

import multiprocessing as mp
from typing import Any

import pytest

from engine import Engine, RequestInvalid, TaskStatus

BACKENDS = ["sqlite", "postgres"]
PROCESSES, ROUNDS = 4, 30


def _contender(db_url: str, barrier: Any, results: Any) -> None:
    from fixtures import sample_request
    from tasks.obproxy import create_cluster

    with Engine(db_url, parallelism=1) as engine:
        for round_no in range(ROUNDS):
            barrier.wait(60)
            try:
                task = create_cluster(engine, sample_request() | {"name": f"race-{round_no}"})
            except RequestInvalid as exc:
                results.put((round_no, "refused", exc.fields, exc.message))
            except Exception as exc:  # anything else is a failure of the test
                results.put((round_no, "error", [], repr(exc)))
            else:
                results.put((round_no, "accepted", [], str(task.id)))


@pytest.mark.timeout(300)
def test_four_processes_create_one_name_thirty_times(engine: Engine, db_url: str) -> None:
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(PROCESSES), ctx.Queue()
    procs = [
        ctx.Process(target=_contender, args=(db_url, barrier, results)) for _ in range(PROCESSES)
    ]
    for proc in procs:
        proc.start()
    outcomes: dict[int, list[tuple[str, list[str], str]]] = {}
    try:
        for _ in range(PROCESSES * ROUNDS):
            round_no, kind, fields, detail = results.get(timeout=120)
            outcomes.setdefault(round_no, []).append((kind, fields, detail))
    finally:
        for proc in procs:
            proc.join(30)
            if proc.is_alive():
                proc.kill()
    assert all(proc.exitcode == 0 for proc in procs)
    for round_no in range(ROUNDS):
        kinds = sorted(kind for kind, _, _ in outcomes[round_no])
        assert kinds == ["accepted"] + ["refused"] * (PROCESSES - 1), outcomes[round_no]
        for kind, fields, detail in outcomes[round_no]:
            if kind == "refused":
                assert fields == ["name"] and "already exists" in detail, detail
    tasks = engine.list(limit=1000)
    assert len(tasks) == ROUNDS
    final = [engine.run(task.id, timeout=30) for task in tasks]
    assert {t.status for t in final} == {TaskStatus.SUCCESSFUL}
