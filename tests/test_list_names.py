"""Fuzzy name filters (a task's name, an OceanBase cluster's) when names are many.

Names are usually few (one per kind of task), so a filter first picks the matching names among
the distinct ones; an embedded user who names every task anew could have tens of thousands,
more than a statement can bind. Past ``MAX_NAMES`` the filter matches each row's name instead:
the same answer either way.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import Engine, Node, Template
from engine.reads import list_sql


def _submit(engine: Engine, name: str, cluster: str) -> None:
    link = {"obClusterId": len(cluster), "clusterName": cluster}
    engine.submit(
        Template(name, [Node("bench.noop.Noop", "a")]), payload={"request": {"obLinks": [link]}}
    )


@pytest.mark.parametrize("most", [1000, 3], ids=["names-listed", "rows-matched"])
def test_fuzzy_names_answer_alike_however_many_names(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, most: int
) -> None:
    monkeypatch.setattr(list_sql, "MAX_NAMES", most)
    with Engine(str(db_path), parallelism=1) as engine:
        for name, cluster in [("Backup 1", "Hooray"), ("backup 2", "hooray_2"),
                              ("Restore", "other"), ("50%_off", "x%y")]:  # fmt: skip
            _submit(engine, name, cluster)

        def names(**ask: str) -> list[str]:
            tasks, total = engine.page(**ask, limit=10)
            assert total == len(tasks)
            return sorted(t.name for t in tasks)

        assert names(name="BACKUP") == ["Backup 1", "backup 2"]
        assert names(name="%_") == ["50%_off"]  # wildcards are plain characters
        assert names(name="nothing") == []
        assert names(cluster_name="HOORAY") == ["Backup 1", "backup 2"]
        assert names(cluster_name="%") == ["50%_off"]
        assert names(cluster_name="oo", name="2") == ["backup 2"]
