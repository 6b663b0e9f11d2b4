"""The layout holds by itself: import-linter's contracts leave no module outside a layer, task
packages are loaded by every Engine whatever the process imported, a snapshot's columns are one
list, and moved step modules still load from old records."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from sqlalchemy import inspect

from engine import Engine, Step
from engine.db.records import SUBTASKS, TASKS
from engine.reads.task_lists import SUBTASK_COLUMNS, TASK_COLUMNS, UNSHOWN_COLUMNS
from engine.step import load_step
from tasks.obproxy.install_steps import SetObproxyUserPassword
from tests.api_helpers import ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
UNLISTED = [
    "engine.db.unlisted",
    "engine.unlisted",
    "tasks.unlisted",
    "api.unlisted",
    "cli.unlisted",
]


def test_a_module_outside_every_layer_fails_the_import_contracts(tmp_path: Path) -> None:
    """A copy of the tree with one new module in each checked package: lint-imports names each
    (the real tree passes in ``make test``, which runs it before the tests)."""
    for package in ("engine", "tasks", "api", "cli", "fixtures"):
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("*.rpm", "static")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    for module in UNLISTED:
        path = tmp_path.joinpath(*module.split(".")).with_suffix(".py")
        path.write_text('"""Not named by any layer."""\n')
    checked = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert checked.returncode != 0, checked.stdout[-2000:]
    for module in UNLISTED:
        assert module in checked.stdout, (module, checked.stdout[-3000:])


def test_every_engine_loads_the_task_packages_whatever_the_process_imported(
    tmp_path: Path,
) -> None:
    """A process that imports only the engine gets the task packages' tables, host guards and
    host commands, as the CLI and the server do."""
    script = (
        "import json, sys\n"
        "from engine import Engine\n"
        "with Engine(sys.argv[1]) as e:\n"
        "    from sqlalchemy import inspect\n"
        "    tables = inspect(e.store.engine).get_table_names()\n"
        "    print(json.dumps({'packages': e.packages.packages, 'tables': tables,\n"
        "                      'commands': list(e.hosts.required_commands),\n"
        "                      'guards': [g.__name__ for g in e.packages.host_guards]}))\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "x.db")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT,
    )
    seen = json.loads(ran.stdout)
    assert seen["packages"] == ["hosts", "obclusters", "obproxy"]
    assert {"ob_cluster", "obproxy_cluster", "obproxy_server"} <= set(seen["tables"])
    assert seen["commands"] == ["cpio", "pgrep", "python3", "rpm2cpio"]
    assert seen["guards"] == ["obproxy_on_host"]


def test_a_snapshot_shows_every_column_or_says_it_does_not(db_path: Path) -> None:
    """One column list for the Engine's snapshots and the SQLite reader: a column added to a
    table must be put in it or in the list of columns no snapshot shows."""
    with Engine(str(db_path)) as engine:
        columns = inspect(engine.store.engine)
        for table, shown in ((TASKS, TASK_COLUMNS), (SUBTASKS, SUBTASK_COLUMNS)):
            in_table = {c["name"] for c in columns.get_columns(table.name)}
            unshown = UNSHOWN_COLUMNS[table.name]
            assert not set(shown) & unshown
            assert set(shown) | unshown == in_table


def test_a_step_recorded_at_a_module_path_that_moved_still_loads() -> None:
    moved = load_step("tasks.obproxy.host_steps.SetObproxyUserPassword")
    assert moved is SetObproxyUserPassword and issubclass(moved, Step)
    assert load_step("tasks.obproxy.server_steps.StartNode").__name__ == "StartNode"
    assert load_step("tasks.obproxy.steps.PrepareObproxyInstall").__name__ == (
        "PrepareObproxyInstall"
    )
