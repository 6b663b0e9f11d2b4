"""The ``ocptask`` command line over a real database file (typer's runner, no subprocess)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli import app
from fixtures import REQUESTS

runner = CliRunner()


def test_create_show_log_and_list(db_path: Path) -> None:
    db = ["--db", str(db_path)]
    result = runner.invoke(
        app, ["obproxy", "create", str(REQUESTS / "create-obproxy-cluster.json"), *db]
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["status"] == "SUCCESSFUL" and record["name"] == "Install obproxy"

    shown = runner.invoke(app, ["task", "show", str(record["id"]), "--json", *db])
    assert json.loads(shown.output) == record
    table = runner.invoke(app, ["task", "show", str(record["id"]), *db]).output
    assert table.startswith(f"task {record['id']} Install obproxy: SUCCESSFUL (EXECUTE), by ")
    assert "Prepare obproxy install" in table and "Finish node" in table

    prepare = record["subtasks"][0]["id"]
    log = runner.invoke(app, ["task", "log", str(record["id"]), str(prepare), *db])
    assert log.output.startswith("############{EXECUTE}{")

    listed = runner.invoke(app, ["task", "list", *db])
    assert "Install obproxy" in listed.output and "SUCCESSFUL" in listed.output
    as_json = json.loads(runner.invoke(app, ["task", "list", "--json", *db]).output)
    assert [t["id"] for t in as_json] == [record["id"]]
    for args, ids in [
        (["--status", "FAILED"], []),
        (["--status", "SUCCESSFUL", "--name", "obproxy"], [record["id"]]),
        (["--name", "nothing-like-it"], []),
        (["--since", "1h"], [record["id"]]),
        (["--since", "2999-01-01T00:00:00"], []),
    ]:
        out = runner.invoke(app, ["task", "list", "--json", *args, *db])
        assert out.exit_code == 0, out.output
        assert [t["id"] for t in json.loads(out.output)] == ids, args
    bad = runner.invoke(app, ["task", "list", "--since", "yesterday", *db])
    assert bad.exit_code == 2 and "--since 'yesterday'" in bad.stderr


def test_refusals_are_one_line_messages(db_path: Path, tmp_path: Path) -> None:
    db = ["--db", str(db_path)]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": " ", "workMode": "RS_LIST", "obLinks": []}))
    result = runner.invoke(app, ["obproxy", "create", str(bad), *db])
    assert result.exit_code == 2
    assert "name: must not be empty or only whitespace" in result.output
    assert "Traceback" not in result.output and len(result.output.splitlines()) == 1
    bad.write_text(json.dumps({"name": "p1", "workMode": "RS_LIST", "obLinks": []}))
    result = runner.invoke(app, ["obproxy", "create", str(bad), *db])
    assert (
        result.exit_code == 2 and "obLinks: RS_LIST mode takes exactly one obLink" in result.output
    )

    missing = runner.invoke(app, ["task", "show", "42", *db])
    assert missing.exit_code == 3 and "code 20000" in missing.stderr

    created = runner.invoke(
        app, ["obproxy", "create", str(REQUESTS / "create-obproxy-cluster.json"), "--no-wait", *db]
    )
    task_id = json.loads(created.output)["id"]
    illegal = runner.invoke(app, ["task", "retry", str(task_id), *db])
    assert illegal.exit_code == 2 and "code 20003" in illegal.output


def test_definitions_add_list_disable(db_path: Path) -> None:
    db = ["--db", str(db_path)]
    added = runner.invoke(
        app, ["definition", "add", "tick", "tests.test_daemon:TICK", "--interval", "60", *db]
    )
    assert added.exit_code == 0, added.output
    assert added.output.startswith("definition 1: tick, next fire ")
    listed = runner.invoke(app, ["definition", "list", *db])
    assert "interval 60" in listed.output and "yes" in listed.output
    assert runner.invoke(app, ["definition", "disable", "1", *db]).exit_code == 0
    assert " no " in runner.invoke(app, ["definition", "list", *db]).output
    bad = runner.invoke(
        app, ["definition", "add", "x", "tests.test_daemon:TICK", "--cron", "* *", *db]
    )
    assert bad.exit_code == 2 and "cron" in bad.output and "Traceback" not in bad.output
    missing = runner.invoke(app, ["definition", "enable", "9", *db])
    assert missing.exit_code == 3 and "Traceback" not in missing.output


def test_log_follows_a_running_subtask(db_path: Path) -> None:
    """``task log -f`` (in its own process) prints what the step logs while it runs and
    returns once the subtask ends."""
    import subprocess
    import sys
    import threading

    from engine import Engine
    from tests.helpers import one, wait_for
    from tests.steps import GATES

    with Engine(str(db_path)) as engine:
        task = engine.submit(one("LoggedGate", timeout=60))
        sub = task.subtasks[0]
        engine.start(task.id)
        wait_for(lambda: "before the gate" in engine.log(task.id, sub.id))
        follow = ["task", "log", str(task.id), str(sub.id), "-f", "--db", str(db_path)]
        follower = subprocess.Popen(
            [sys.executable, "-m", "cli", *follow],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).parent.parent,
        )
        first = follower.stdout.readline() if follower.stdout else ""
        assert first.startswith("############{EXECUTE}{")
        assert "before the gate" in follower.stdout.readline()  # type: ignore[union-attr]
        assert follower.poll() is None  # still following: the step waits at its gate
        threading.Timer(0.5, GATES.setdefault("LoggedGate", threading.Event()).set).start()
        rest, _ = follower.communicate(timeout=30)
        assert "after the gate" in rest and follower.returncode == 0
        assert engine.wait(task.id, timeout=30).status.value == "SUCCESSFUL"
