"""A task list's ``totalElements`` kept between reads (``list_sql.Counts``) stays exact.

A kept count is brought up to date by counting only the tasks added since; these tests add
tasks through another Engine (as a daemon or the command line would, in another process), purge
some, and check every count against one counted in full by a fresh Engine.
"""

from __future__ import annotations

from pathlib import Path

from engine import Engine, Node, Template
from engine.clock import utcnow

NOOP = Template("count me", [Node("bench.noop.Noop", "a")])
OTHER = Template("other kind", [Node("bench.noop.Noop", "a")])


def _add(engine: Engine, template: Template, hosts: list[str], n: int) -> None:
    for _ in range(n):
        task = engine.submit(template, {"listMap": {"host_ids": hosts}})
        engine.run(task.id)


def _totals(engine: Engine) -> dict[str, int]:
    asks = {
        "all": {},
        "host 3": {"host_id": 3},
        "host 4": {"host_id": 4},
        "name": {"name": "count"},
        "name, host 4": {"name": "kind", "host_id": 4},
        "status": {"statuses": ["SUCCESSFUL"]},
    }
    return {label: engine.page(**ask, limit=1)[1] for label, ask in asks.items()}


def test_kept_counts_follow_new_tasks_and_purges(db_path: Path) -> None:
    with Engine(str(db_path), parallelism=2) as reader, Engine(str(db_path), 2) as writer:
        _add(writer, NOOP, ["3"], 3)
        assert _totals(reader)["host 3"] == 3  # counted in full, then kept
        _add(writer, NOOP, ["3", "4"], 2)
        _add(writer, OTHER, ["4"], 4)
        expected = {"all": 9, "host 3": 5, "host 4": 6, "name": 5, "name, host 4": 4,
                    "status": 9}  # fmt: skip
        assert _totals(reader) == expected
        assert _totals(reader) == expected  # read again: nothing new
        with Engine(str(db_path), parallelism=1) as fresh:
            assert _totals(fresh) == expected

        report = writer.purge(utcnow())
        assert report.tasks == 9
        assert _totals(reader) == dict.fromkeys(expected, 0)
        _add(writer, OTHER, ["4"], 1)
        assert _totals(reader) == {**dict.fromkeys(expected, 0), "all": 1, "host 4": 1,
                                   "name, host 4": 1, "status": 1}  # fmt: skip
