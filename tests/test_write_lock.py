"""SQLite writers queue on one lock across processes, not in SQLite's sleeping busy handler."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

from api.auth.users import Users
from engine import Engine
from engine.db.write_lock import WriteLock
from tests.api_helpers import ROOT

CLI = [sys.executable, "-m", "cli"]


def test_a_write_in_another_process_waits_for_the_lock(db_path: Path) -> None:
    with Engine(str(db_path)) as engine:
        Users(engine.store).add("first", "first-Passw0rd")
    lock = WriteLock(db_path)  # another holder in this process, as a second process would be
    with lock:
        writer = subprocess.Popen(
            [*CLI, "user", "add", "second", "--password-stdin", "--db", str(db_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert writer.stdin is not None
        writer.stdin.write("second-Passw0rd\n")
        writer.stdin.close()
        try:
            writer.wait(timeout=3)
            raise AssertionError("the write did not wait for the lock")
        except subprocess.TimeoutExpired:
            pass  # queued on the lock, as it should be
    assert writer.wait(timeout=30) == 0, writer.stderr.read() if writer.stderr else ""
    with Engine(str(db_path)) as engine:
        assert {u.name for u in Users(engine.store).list()} == {"first", "second"}


def test_a_forked_child_takes_the_lock_for_itself(db_path: Path) -> None:
    """An flock belongs to an open file, which a forked child shares: were the child to use the
    parent's file, it would hold the lock whenever the parent does."""
    lock = WriteLock(db_path)
    with lock:
        pass  # the lock file is open in this process now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: wait until the parent holds the lock, then try to take it
        os.read(read, 1)
        try:
            fcntl.flock(lock._file(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            os._exit(1)  # taken: it shared the parent's hold
        except BlockingIOError:
            os._exit(0)
    with lock:
        os.write(write, b"x")
        _, status = os.waitpid(pid, 0)
    os.close(read)
    os.close(write)
    assert os.waitstatus_to_exitcode(status) == 0


def _lock_files_open(db_path: Path) -> int:
    lock_file = str(db_path) + ".write-lock"
    return sum(1 for fd in os.listdir("/proc/self/fd") if _target(fd) == lock_file)


def _target(fd: str) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


def test_the_lock_file_is_closed_with_the_last_engine_of_its_database(db_path: Path) -> None:
    """Engines of one database in one process share its lock file; none is left open after."""
    first = Engine(str(db_path))
    Users(first.store).add("first", "first-Passw0rd")  # a write: the lock file is opened
    second = Engine(str(db_path))
    Users(second.store).add("second", "second-Passw0rd")
    assert _lock_files_open(db_path) == 1
    first.close()
    assert _lock_files_open(db_path) == 1  # the second engine still writes through it
    Users(second.store).add("third", "third-Passw0rd")
    second.close()
    assert _lock_files_open(db_path) == 0
