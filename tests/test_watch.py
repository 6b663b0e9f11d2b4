"""Watching a 3-host create on real sandbox hosts: live in a real pseudo-terminal, and as plain
lines through a pipe; then the recap naming what failed and how to read its log."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import Engine, TaskStatus
from fixtures import install_request, register_ob_cluster
from fixtures import sandbox as sandbox_hosts
from tasks.obproxy import create_cluster

ROOT = Path(__file__).parent.parent
PACKAGES = ROOT / "fixtures" / "packages"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")
pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def env(sandbox: dict, db_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    monkeypatch.setenv("OCPTASK_PACKAGE_DIR", str(PACKAGES))
    with Engine(str(db_path)) as engine:
        ids = [engine.hosts.add(h).id for h in sandbox["inventory"]]
        register_ob_cluster(engine, "proxyro-Secret-4711")
    yield {"host_ids": ids, "db": str(db_path), **sandbox}
    sandbox_hosts.reset(sandbox["state"])


def in_a_terminal(*args: str) -> tuple[int, str]:
    """``ocptask ARGS`` in a 160x50 pseudo-terminal; its exit code and everything it drew."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: a terminal is its stdin, stdout and stderr
        fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
        os.chdir(ROOT)
        argv = [sys.executable, "-m", "cli", *args]
        os.execve(sys.executable, argv, dict(os.environ, TERM="xterm-256color"))
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode(errors="replace")


def test_live_view_in_a_terminal_and_its_recap(env: dict, tmp_path: Path) -> None:
    request = tmp_path / "request.json"
    request.write_text(json.dumps(install_request(env["host_ids"])))
    sandbox_hosts.stop_host(2, env["state"])
    try:
        code, drawn = in_a_terminal("obproxy", "create", str(request), "--db", env["db"])
    finally:
        sandbox_hosts.start_host(2, env["state"])
    screen = ANSI.sub("", drawn)
    assert code == 1, screen[-3000:]
    assert "\x1b[" in drawn  # drawn as a live display, not plain lines
    # Each live host's row moved through its chain: several of its steps were shown current.
    row = re.compile(r"sandbox-1 \(127\.0\.0\.111\)\s+(\S.*?) (READY|RUNNING|SUCCESSFUL|PENDING)")
    steps = {m.group(1).strip() for m in row.finditer(screen)}
    assert len(steps) >= 2, screen[-3000:]
    # The dead host's row shows its failed step; the recap names it and the log command.
    assert re.search(r"sandbox-2 \(127\.0\.0\.112\)\s+Prepare create obproxy FAILED", screen)
    recap = screen[screen.rindex("recap") :]
    assert re.search(r"sandbox-2 \(127\.0\.0\.112\)\s*│\s*0\s*│\s*1\s*│", recap), recap
    assert re.search(r"sandbox-1 \(127\.0\.0\.111\)\s*│\s*10\s*│\s*0\s*│", recap), recap
    assert "Prepare create obproxy" in recap and "cannot connect" in recap
    assert re.search(r"see: ocptask task log \d+ \d+ --db ", recap)
    assert "Traceback" not in screen


def test_piped_watch_prints_a_plain_line_per_change(env: dict) -> None:
    with Engine(env["db"]) as engine:
        task = create_cluster(engine, install_request(env["host_ids"]))
        engine.start(task.id)  # this process runs it; the watcher only reads
        watched = subprocess.run(
            [sys.executable, "-m", "cli", "task", "watch", str(task.id), "--db", env["db"]],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=180,
        )
        assert engine.wait(task.id, timeout=120).status is TaskStatus.SUCCESSFUL
    out = watched.stdout
    assert watched.returncode == 0, watched.stderr + out
    assert "\x1b" not in out
    changes = [line for line in out.splitlines() if re.match(r"^\d\d:\d\d:\d\d ", line)]
    seen = [tuple(line.split()[1:3]) for line in changes]  # (status, #id)
    assert len(seen) == len(set(seen))  # a line per change, never the same one twice
    assert sum(status == "SUCCESSFUL" for status, _ in seen) == 32
    assert f"task {task.id} Install obproxy: SUCCESSFUL" in out
    assert "recap" in out and "sandbox-3 (127.0.0.113)" in out
