"""The SSH layer against real sshd sandbox hosts: pinning, exit codes, killing, uploads."""

from __future__ import annotations

import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.errors import (
    CommandFailed,
    CommandTimedOut,
    ConnectionLost,
    HostKeyMismatch,
    HostUnreachable,
)
from engine.remote.ssh import SshPool, SshTarget
from fixtures import sandbox as sandbox_hosts

ROOT = Path(__file__).parent.parent


def target(host: dict[str, Any], **changes: Any) -> SshTarget:
    fields = {
        "name": host["name"],
        "address": host["innerIpAddress"],
        "port": host["sshPort"],
        "username": host["username"],
        "private_key_path": host["privateKeyPath"],
        "host_key": host["hostKey"],
    }
    fields.update(changes)
    return SshTarget(**fields)


@pytest.fixture
def pool() -> Iterator[SshPool]:
    pool = SshPool(connect_timeout=3)
    yield pool
    pool.close()


def test_exit_codes_and_output_come_from_the_channel(sandbox: dict, pool: SshPool) -> None:
    conn = pool.connection(target(sandbox["inventory"][0]))
    lines: list[tuple[str, str]] = []
    result = conn.run("echo out; echo err >&2; exit 0", on_output=lambda s, t: lines.append((s, t)))
    assert (result.exit_code, result.stdout, result.stderr) == (0, "out\n", "err\n")
    assert ("stdout", "out") in lines and ("stderr", "err") in lines
    with pytest.raises(CommandFailed) as err:
        conn.run("echo 'it broke' >&2; exit 3")
    assert err.value.result.exit_code == 3
    assert "sandbox-1 (127.0.0.111:2222)" in str(err.value) and "it broke" in str(err.value)
    assert conn.run("exit 4", check=False).exit_code == 4


def test_output_that_outlives_the_exit_status_is_kept(sandbox: dict, pool: SshPool) -> None:
    """sshd sends the exit status when the command's process ends; output still on its way (here
    from a child that writes a moment later) arrives after it, before the channel's EOF."""
    conn = pool.connection(target(sandbox["inventory"][0]))
    for _ in range(3):
        result = conn.run("(sleep 0.3; echo late) & echo early")
        assert result.stdout.split() == ["early", "late"]
    assert conn.run("printf '%s' no-newline").stdout == "no-newline"


def test_one_pooled_connection_per_host(sandbox: dict, pool: SshPool) -> None:
    host = sandbox["inventory"][0]
    assert pool.connection(target(host)) is pool.connection(target(host))
    conn = pool.connection(target(host))
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda i=i: results.append(conn.run(f"echo {i}").stdout))
        for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [f"{i}\n" for i in range(8)]


def _leftovers(conn: Any, marker: str) -> int:
    out = conn.run(f'ps -u "$(id -u)" -o args= | grep -c {shlex.quote(marker)} || true').stdout
    return int(out.strip()) - 0  # grep's own line does not match: the pattern has a bracket


def test_timeout_kills_the_whole_remote_tree(sandbox: dict, pool: SshPool) -> None:
    conn = pool.connection(target(sandbox["inventory"][0]))
    started = time.monotonic()
    with pytest.raises(CommandTimedOut) as err:
        conn.run("sleep 4101 & sleep 4102 & sleep 4103; echo never", timeout=1)
    assert time.monotonic() - started < 4
    assert "timed out after 1 s" in str(err.value)
    assert _leftovers(conn, "[s]leep 410") == 0


def test_stop_event_kills_the_remote_tree(sandbox: dict, pool: SshPool) -> None:
    conn = pool.connection(target(sandbox["inventory"][0]))
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    result = conn.run("sleep 4201 & sleep 4202", stop=stop, check=False)
    assert result.exit_code is None
    assert _leftovers(conn, "[s]leep 420") == 0


def test_commands_of_a_dead_controller_are_found_by_tag_and_killed(sandbox: dict) -> None:
    """A controller SIGKILLed mid-command leaves it running (no terminal, nothing hangs it up);
    a later connection finds its process group by the tag and kills it."""
    host = sandbox["inventory"][0]
    code = (
        "import sys; sys.path.insert(0, '.')\n"
        "from engine.remote.ssh import SshConnection, SshTarget\n"
        f"t = SshTarget({host['name']!r}, {host['innerIpAddress']!r}, {host['sshPort']!r}, "
        f"{host['username']!r}, private_key_path={host['privateKeyPath']!r}, "
        f"host_key={host['hostKey']!r})\n"
        "SshConnection(t).run('sleep 4301 & sleep 4302', tag='subtask-77')\n"
    )
    controller = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    survivor = SshPool(connect_timeout=3).connection(target(host))

    def sleeps() -> int:
        return len(
            survivor.run("pgrep -u \"$(id -u)\" -f '^sleep 430'", check=False).stdout.split()
        )

    try:
        deadline = time.monotonic() + 10
        while sleeps() < 2:
            assert time.monotonic() < deadline, "the tagged command never started"
            time.sleep(0.05)
    finally:
        controller.kill()  # the process this test started, by pid
        controller.wait(10)
    time.sleep(0.3)
    assert sleeps() == 2  # the controller is dead; its command still runs on the host
    assert survivor.kill_tagged("subtask-7") == []  # another tag: not touched
    assert len(survivor.kill_tagged("subtask-77")) == 1
    assert sleeps() == 0
    assert survivor.kill_tagged("subtask-77") == []  # nothing left, and the mark is gone
    assert survivor.run("sleep 0.01", tag="subtask-78").exit_code == 0
    assert survivor.run('ls "$HOME/.ocptask/run"').stdout == ""  # a finished command's mark goes
    with pytest.raises(ValueError):
        survivor.run("true", tag="x; rm -rf /")
    with pytest.raises(CommandTimedOut):  # killed by TERM: its EXIT trap still removes the mark
        survivor.run("sleep 4303", tag="subtask-79", timeout=0.5)
    assert survivor.run('ls "$HOME/.ocptask/run"').stdout == ""
    # A mark whose number now belongs to a stranger (another start time) kills nothing.
    stranger = survivor.run("setsid sleep 4304 >/dev/null 2>&1 & echo $!").stdout.strip()
    survivor.run(f'echo 1 > "$HOME/.ocptask/run/subtask-80.{stranger}"')
    assert survivor.kill_tagged("subtask-80") == []
    assert sleeps() == 1
    survivor.run(f"kill {stranger}")
    # Nowhere to leave a mark: the command runs anyway.
    survivor.run('rmdir "$HOME/.ocptask/run" && touch "$HOME/.ocptask/run"')
    assert survivor.run("echo ran", tag="subtask-81").stdout == "ran\n"
    survivor.run('rm -f "$HOME/.ocptask/run"')
    survivor.close()


def test_values_are_passed_literally(sandbox: dict, pool: SshPool, tmp_path: Path) -> None:
    conn = pool.connection(target(sandbox["inventory"][0]))
    nasty = "x'; touch /tmp/ocptask-pwned-ssh; echo '$(touch /tmp/ocptask-pwned-ssh2)`id`"
    assert conn.run(f"printf '%s' {shlex.quote(nasty)}").stdout == nasty
    assert not Path("/tmp/ocptask-pwned-ssh").exists()
    assert not Path("/tmp/ocptask-pwned-ssh2").exists()


def test_upload_is_verified_and_skipped_when_unchanged(
    sandbox: dict, pool: SshPool, tmp_path: Path
) -> None:
    host = sandbox["inventory"][0]
    conn = pool.connection(target(host))
    local = tmp_path / "pkg.bin"
    local.write_bytes(b"\x00obproxy" * 100_000)
    remote = f"{sandbox['state']}/home1/packages/pkg.bin"
    assert conn.put(local, remote) is True
    assert conn.put(local, remote) is False  # same sha256: not sent again
    local.write_bytes(b"changed")
    assert conn.put(local, remote) is True
    assert conn.run(f"cat {shlex.quote(remote)}").stdout == "changed"


def test_changed_host_key_is_refused_and_nothing_runs(sandbox: dict, pool: SshPool) -> None:
    first, second = sandbox["inventory"][:2]
    wrong = first["hostKey"].split(" ", 1)[0] + " " + second["hostKey"].split(" ", 1)[1]
    with pytest.raises(HostKeyMismatch, match=r"sandbox-1 \(127.0.0.111:2222\): host key changed"):
        pool.connection(target(first, host_key=wrong)).run("touch ran-anyway")
    assert not (Path(sandbox["state"]) / "home1" / "ran-anyway").exists()


def test_unpinned_host_is_refused_unless_trusted_on_first_use(sandbox: dict) -> None:
    host = sandbox["inventory"][0]
    with pytest.raises(HostKeyMismatch, match="no host key is pinned"):
        SshPool().connection(target(host, host_key=None)).run("true")
    conn = SshPool().connection(target(host, host_key=None, trust_on_first_use=True))
    conn.run("true")
    assert conn.learned_host_key is not None
    assert conn.learned_host_key.split()[1:] == host["hostKey"].split()[1:]


def test_stopped_host_is_unreachable_and_named(sandbox: dict) -> None:
    host = sandbox["inventory"][1]
    sandbox_hosts.stop_host(2, sandbox["state"])
    try:
        with pytest.raises(
            HostUnreachable, match=r"sandbox-2 \(127.0.0.112:2222\): cannot connect"
        ):
            SshPool(connect_timeout=2).connection(target(host)).run("true")
    finally:
        sandbox_hosts.start_host(2, sandbox["state"])


def test_silent_host_times_out_within_connect_timeout(sandbox: dict) -> None:
    """A host that accepts TCP but never speaks SSH (a plain socket here)."""
    listener = socket.create_server(("127.0.0.29", 2222))
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    host = dict(sandbox["inventory"][0], name="silent", innerIpAddress="127.0.0.29")
    started = time.monotonic()
    try:
        with pytest.raises(HostUnreachable, match=r"silent \(127.0.0.29:2222\): no SSH greeting"):
            SshPool(connect_timeout=1).connection(target(host)).run("true")
    finally:
        listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close alone does not
        listener.close()
        for sock in accepted:
            sock.close()
    assert time.monotonic() - started < 1 + 5


def test_a_connection_lost_mid_command_is_named_and_the_next_command_reconnects(
    sandbox: dict, pool: SshPool
) -> None:
    """The command kills the sshd process serving its own connection (the user's one, found by
    walking up its parents): the run ends with ConnectionLost naming the host, not a paramiko
    EOFError, and the pool's next command goes over a new connection."""
    conn = pool.connection(target(sandbox["inventory"][2]))
    assert conn.run("echo before").stdout == "before\n"
    suicide = (
        'p=$$; while [ "$(cat /proc/$p/comm)" != sshd ]; do '
        "p=$(awk '{print $4}' /proc/$p/stat); done; kill -9 $p; sleep 5"
    )
    with pytest.raises(ConnectionLost) as lost:
        conn.run(suicide, timeout=20)
    assert "sandbox-3 (127.0.0.113:2222)" in str(lost.value)
    assert pool.connection(target(sandbox["inventory"][2])).run("echo after").stdout == "after\n"
