"""Every exit code of ``ocptask`` and no traceback on bad input: 0 done, 1 the task ended FAILED,
2 refused input or an illegal operation, 3 not found, 4 the database cannot be opened. Errors
are one line on stderr; ``--debug`` is the only way to a traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from engine import Engine
from fixtures import REQUESTS, install_request, register_ob_cluster
from tests.api_helpers import run_cli
from tests.helpers import silent_listener

runner = CliRunner()
SAMPLE = str(REQUESTS / "create-obproxy-cluster.json")
PACKAGES = Path(__file__).parent.parent / "fixtures" / "packages"


def one_error_line(result: object, code: int, *needles: str) -> None:
    exit_code = getattr(result, "exit_code", getattr(result, "returncode", None))
    stdout, stderr = result.stdout, result.stderr  # type: ignore[attr-defined]
    assert exit_code == code, (stdout, stderr)
    assert "Traceback" not in stdout + stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_bad_inputs_get_one_line_and_their_exit_code(db_path: Path, tmp_path: Path) -> None:
    db = ["--db", str(db_path)]
    assert runner.invoke(app, ["obproxy", "create", SAMPLE, *db]).exit_code == 0
    not_utf8 = tmp_path / "latin1.json"
    not_utf8.write_bytes(b'{"name": "caf\xe9"}')
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    broken = tmp_path / "broken.json"
    broken.write_text("{ not json")
    hosts = tmp_path / "hosts.json"
    hosts.write_text('{"hosts": [1]}')
    cases = [
        (["obproxy", "create", str(tmp_path / "missing.json")], 2, "cannot read", "missing.json"),
        (["obproxy", "create", str(not_utf8)], 2, "is not UTF-8"),
        (["obproxy", "create", str(deep)], 2, "nested too deeply"),
        (["obproxy", "create", str(broken)], 2, "is not JSON"),
        (["obproxy", "create", SAMPLE], 2, "already exists"),  # the name is taken
        (["host", "import", str(hosts)], 2, "hosts[0]", "must be a JSON object"),
        (["task", "retry", "1"], 2, "code 20003"),  # not FAILED
        (["task", "show", "42"], 3, "Task 42 does not exist", "code 20000"),
        (["task", "show", str(2**70)], 3, "does not exist"),
        (["task", "log", "1", "999"], 3, "does not exist"),
        (["task", "log", "1", "999", "-f"], 3, "does not exist"),
        (["obproxy", "restart", "99", "1"], 3, "OBProxy cluster 99 does not exist"),
    ]
    for args, code, *needles in cases:
        one_error_line(runner.invoke(app, [*args, *db]), code, *needles)


def test_databases_that_cannot_be_opened_exit_4(tmp_path: Path) -> None:
    not_a_db = tmp_path / "junk.db"
    not_a_db.write_text("this is not a database file, just some text " * 10)
    for where, reason in [
        (str(tmp_path), "unable to open database file"),  # a directory
        (str(not_a_db), "file is not a database"),
        ("/proc/no-such-dir/x.db", "No such file or directory"),
        ("foo://bar", "Can't load plugin"),
    ]:
        result = runner.invoke(app, ["task", "list", "--db", where])
        one_error_line(result, 4, f"cannot open {where}", reason)


def test_unexpected_errors_are_one_line_unless_debug(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault inside the engine (made here by replacing ``Engine.page``, and the SQLite
    reader's, which ``task list`` uses once the file exists) is one line and exit 1; with
    ``--debug`` its traceback is shown."""
    from engine.reads.sqlite_reader import SqliteReader

    def broken(self: Engine, **kwargs: object) -> None:
        raise ZeroDivisionError("made for the test")

    monkeypatch.setattr(Engine, "page", broken)
    monkeypatch.setattr(SqliteReader, "page", broken)
    result = runner.invoke(app, ["task", "list", "--db", str(db_path)])
    one_error_line(result, 1, "unexpected ZeroDivisionError: made for the test", "--debug")
    debug = runner.invoke(app, ["--debug", "task", "list", "--db", str(db_path)])
    assert debug.exit_code == 1 and isinstance(debug.exception, ZeroDivisionError)


@pytest.fixture
def silent_host() -> Iterator[str]:
    """An address that accepts TCP on the SSH port and never says a word."""
    with silent_listener("127.0.0.31"):
        yield "127.0.0.31"


def test_a_task_that_fails_exits_1_without_paramikos_noise(
    db_path: Path, tmp_path: Path, silent_host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The create's first step cannot reach the host (no SSH greeting): the task ends FAILED,
    the command exits 1, and stderr carries no paramiko message or traceback (the reason is
    in the step's log, naming the host)."""
    monkeypatch.setenv("OCPTASK_PACKAGE_DIR", str(PACKAGES))
    key = tmp_path / "id_ed25519"
    key.write_text("not used: the host never gets that far\n")
    with Engine(str(db_path)) as engine:
        host = engine.hosts.add(
            {
                "name": "silent",
                "innerIpAddress": silent_host,
                "sshPort": 2222,
                "username": "nobody",
                "privateKeyPath": str(key),
                "trustOnFirstUse": True,
            }
        )
        register_ob_cluster(engine, "proxyro-Secret-4711")
    request = tmp_path / "request.json"
    request.write_text(json.dumps(install_request([host.id])))
    result = run_cli(str(db_path), "obproxy", "create", str(request))
    assert result.returncode == 1, result.stderr
    record = json.loads(result.stdout)
    assert record["status"] == "FAILED"
    assert result.stderr == "", result.stderr
    with Engine(str(db_path)) as engine:
        failed = [s for s in engine.get(record["id"]).subtasks if s.status.value == "FAILED"]
        assert "no SSH greeting" in engine.log(record["id"], failed[0].id)
