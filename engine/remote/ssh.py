"""Running commands on hosts over SSH: pinned host keys, pooled connections, killable commands.

What this does differently from obd's SSH layer (obproxy-install-anatomy.md §3): host keys are
checked against a pinned known_hosts line (trust on first use only when asked), one connection
per host is shared by all of that host's subtasks, TCP_NODELAY is set (≈2 ms per command instead
of ≈44 ms), exit codes come from the channel, and a command that times out or is cancelled has
its whole remote process group killed, so nothing is left running on the host.
"""

from __future__ import annotations

import hashlib
import logging
import select
import shlex
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import paramiko
from paramiko.hostkeys import HostKeyEntry

from engine.errors import (
    AuthFailed,
    CommandFailed,
    CommandResult,
    CommandTimedOut,
    ConnectionLost,
    HostKeyMismatch,
    HostUnreachable,
    SshError,
)

from .shell import (
    PGID_MARK,
    RUN_DIR,
    START_TIME,
    TAGGED_WRAPPER,
    WRAPPER,
    OutputLines,
    checked_tag,
    stop_script,
)

# paramiko logs what it meets on its own ("Exception (client): Error reading SSH protocol
# banner" and a traceback) to whatever handler the process has, or to stderr if it has none:
# the CLI's terminal, a daemon's log, an embedding program's output. What matters of it reaches
# the caller as HostUnreachable or ConnectionLost, naming the host. A program that wants
# paramiko's own words attaches a handler to the "paramiko" logger and sets propagate back.
_paramiko_log = logging.getLogger("paramiko")
_paramiko_log.addHandler(logging.NullHandler())
_paramiko_log.propagate = False

CONNECT_TIMEOUT = 10.0
POLL_SECONDS = 0.05
EOF_WAIT_SECONDS = 2.0
KILL_GRACE_SECONDS = 1.0


@dataclass(frozen=True)
class SshTarget:
    """How to reach one host. ``password``/key passphrase are secrets: never logged or shown."""

    name: str
    address: str
    port: int
    username: str
    private_key_path: str | None = None
    password: str | None = None
    host_key: str | None = None  # a known_hosts line: "[addr]:port ssh-ed25519 AAAA..."
    trust_on_first_use: bool = False

    @property
    def label(self) -> str:
        return f"{self.name} ({self.address}:{self.port})"

    def __repr__(self) -> str:  # keep secrets out of tracebacks and logs
        return f"SshTarget({self.label}, user={self.username!r})"


class _Pinned(paramiko.MissingHostKeyPolicy):
    """Refuse unknown keys, or (trust on first use) accept and remember the first one."""

    def __init__(self, target: SshTarget) -> None:
        self.target = target
        self.learned: str | None = None

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        if not self.target.trust_on_first_use:
            raise HostKeyMismatch(
                self.target.label,
                "no host key is pinned for this host; pin it (or allow trust on first use) "
                f"— it presented {key.get_name()} {key.get_fingerprint().hex()}",
            )
        self.learned = f"{hostname} {key.get_name()} {key.get_base64()}"


def _transport(sock: socket.socket, **kwargs: object) -> paramiko.Transport:
    """paramiko's Transport asking for AES-GCM first: an AEAD cipher carries its own integrity
    check, where the CTR ciphers' HMAC is compared byte by byte in Python on every packet
    (most of the transport thread's CPU). The server still picks from the whole list."""
    transport = paramiko.Transport(sock, **kwargs)  # type: ignore[arg-type]
    options = transport.get_security_options()
    ciphers = tuple(options.ciphers)
    options.ciphers = tuple(c for c in ciphers if "gcm" in c) + tuple(
        c for c in ciphers if "gcm" not in c
    )
    return transport


class SshConnection:
    """One authenticated SSH transport to one host, shared by threads (one channel each)."""

    def __init__(self, target: SshTarget, *, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.target = target
        self.connect_timeout = connect_timeout
        self.learned_host_key: str | None = None
        self._client: paramiko.SSHClient | None = None
        self._lock = threading.Lock()
        self._home: str | None = None

    # -- connecting -------------------------------------------------------------------------

    def _connected(self) -> paramiko.SSHClient:
        with self._lock:
            client = self._client
            transport = client.get_transport() if client else None
            if client is None or transport is None or not transport.is_active():
                if client is not None:  # a lost connection: let go of it before the next
                    client.close()
                self._client = client = self._connect()
                self._home = None  # asked again of the new login
            return client

    def _connect(self) -> paramiko.SSHClient:
        target, timeout = self.target, self.connect_timeout
        try:
            sock = socket.create_connection((target.address, target.port), timeout=timeout)
        except OSError as exc:
            raise HostUnreachable(target.label, f"cannot connect: {exc}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = paramiko.SSHClient()
        policy = _Pinned(target)
        if target.host_key:
            entry = HostKeyEntry.from_line(target.host_key)
            if entry is None:
                sock.close()
                raise HostKeyMismatch(target.label, "the pinned host key line is malformed")
            for name in entry.hostnames:
                client.get_host_keys().add(name, entry.key.get_name(), entry.key)
        client.set_missing_host_key_policy(policy)
        try:
            client.connect(
                target.address,
                target.port,
                username=target.username,
                key_filename=target.private_key_path,
                password=target.password,
                sock=sock,
                timeout=timeout,
                banner_timeout=timeout,
                auth_timeout=timeout,
                look_for_keys=False,
                allow_agent=False,
                transport_factory=_transport,
            )
        except HostKeyMismatch:
            sock.close()
            raise
        except paramiko.BadHostKeyException as exc:
            sock.close()
            raise HostKeyMismatch(
                target.label,
                f"host key changed: expected {exc.expected_key.get_name()} "
                f"{exc.expected_key.get_fingerprint().hex()}, got {exc.key.get_name()} "
                f"{exc.key.get_fingerprint().hex()}; nothing was run",
            ) from None
        except paramiko.AuthenticationException:
            sock.close()
            how = "private key" if target.private_key_path else "password"
            raise AuthFailed(target.label, f"{target.username!r} refused with its {how}") from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            transport = client.get_transport()
            greeted = transport is not None and bool(transport.remote_version)
            client.close()
            sock.close()
            reason = str(exc) or type(exc).__name__
            if not greeted:
                reason = f"no SSH greeting within {timeout:g} s ({reason})"
            raise HostUnreachable(target.label, reason) from None
        self.learned_host_key = policy.learned
        return client

    # -- commands ---------------------------------------------------------------------------

    def run(
        self,
        command: str,
        *,
        timeout: float | None = None,
        check: bool = True,
        on_output: Callable[[str, str], None] | None = None,
        stop: threading.Event | None = None,
        tag: str | None = None,
    ) -> CommandResult:
        """Run ``command`` (a shell string; quote its values with ``shlex.quote``).

        ``on_output(stream, line)`` receives each line as it arrives. On timeout, on ``stop``
        being set, or on any exception raised into this thread (a step's interrupt), the
        command's remote process group is killed before this returns or raises. ``tag`` (letters,
        digits, ``-``) marks the group on the host so ``kill_tagged`` finds it if this process
        dies before the command ends.
        """
        client = self._connected()
        started = time.monotonic()
        try:
            channel = client.get_transport().open_session(timeout=self.connect_timeout)  # type: ignore[union-attr]
        except (paramiko.SSHException, OSError) as exc:
            raise HostUnreachable(self.target.label, f"cannot open a channel: {exc}") from None
        out = OutputLines("stdout", on_output)
        err = OutputLines("stderr", on_output, pgid_mark=PGID_MARK)
        timed_out = False
        try:
            if tag is None:
                channel.exec_command(WRAPPER + shlex.quote(command))
            else:
                channel.exec_command(TAGGED_WRAPPER + shlex.quote(command) + " " + checked_tag(tag))
            while True:
                busy = False
                if channel.recv_ready():
                    out.feed(channel.recv(65536))
                    busy = True
                if channel.recv_stderr_ready():
                    err.feed(channel.recv_stderr(65536))
                    busy = True
                if not busy and channel.exit_status_ready():
                    break
                if timeout is not None and time.monotonic() - started > timeout:
                    timed_out = True
                    break
                if stop is not None and stop.is_set():
                    break
                if not busy:  # wake on data or close, or at the next check of timeout/stop
                    select.select([channel], [], [], POLL_SECONDS)
            exit_code = None
            if not timed_out and channel.exit_status_ready():
                # sshd sends the exit status when the process ends, which may be before it has
                # passed on the last of its output: read on until the channel's EOF, which comes
                # after all of it (a little while at most: a process left in the background may
                # hold the output open).
                deadline = time.monotonic() + EOF_WAIT_SECONDS
                while True:
                    while channel.recv_ready():
                        out.feed(channel.recv(65536))
                    while channel.recv_stderr_ready():
                        err.feed(channel.recv_stderr(65536))
                    if channel.eof_received or time.monotonic() > deadline:
                        break
                    select.select([channel], [], [], POLL_SECONDS)
                exit_code = channel.recv_exit_status()
        except BaseException:
            self._kill(err.pgid)
            _close(channel)
            raise
        if exit_code is None:
            self._kill(err.pgid)
        _close(channel)
        transport = client.get_transport()
        if (
            exit_code in (None, -1)
            and not timed_out
            and (transport is None or not transport.is_active())
        ):
            raise ConnectionLost(self.target.label, f"connection lost while running: {command}")
        result = CommandResult(
            self.target.label,
            command,
            exit_code,
            out.close(),
            err.close(),
            time.monotonic() - started,
        )
        if timed_out:
            raise CommandTimedOut(result, timeout)  # type: ignore[arg-type]
        if check and exit_code != 0:
            raise CommandFailed(result)
        return result

    def home(self) -> str:
        """The login's home folder, asked once per connection: every step of a host chain
        builds its paths on it, and one command less per step is ~5 ms less per step."""
        if self._home is None:
            home = self.run('printf "%s\\n" "$HOME"').stdout.strip()
            if not home.startswith("/") or home == "/":
                # Every path is built on it: never "/obproxy-..." from an empty answer.
                raise SshError(
                    self.target.label, f"the login's home on the host is {home!r}, not a folder"
                )
            self._home = home
        return self._home

    def kill_tagged(self, tag: str) -> list[int]:
        """Kill every live process group left by commands run with ``tag``; return their ids.

        Groups a dead controller could not kill itself: its connection closed, but a command
        without a terminal keeps running on the host.
        """
        pattern = f'"$HOME"/{RUN_DIR}/{checked_tag(tag)}.*'
        script = START_TIME + (
            f'for f in {pattern}; do [ -e "$f" ] || continue; g=${{f##*.}}; '
            'want=$(cat "$f" 2>/dev/null); rm -f "$f"; '
            # A live process with that number but another start time is a stranger: the group
            # is gone (a pgid is never reused while its group has members).
            'if [ -r "/proc/$g/stat" ]; then _ocptask_start "$g"; '
            '[ "$_ocptask_st" = "$want" ] || continue; fi; '
            'kill -0 "-$g" 2>/dev/null || continue; echo "$g"; '
            + stop_script('"-$g"')
            + "; done; true"
        )
        out = self.run(script).stdout
        return [int(g) for g in out.split() if g.isdigit()]

    def _kill(self, pgid: int | None) -> None:
        """TERM, then KILL, the command's process group, over a fresh channel."""
        if not pgid:
            return
        script = stop_script(f"-{pgid}")
        try:
            client = self._connected()
            _, stdout, _ = client.exec_command(script, timeout=KILL_GRACE_SECONDS + 5)
            stdout.channel.recv_exit_status()
        except Exception:  # the host is gone: nothing left to kill there either
            pass

    # -- files ------------------------------------------------------------------------------

    def put(self, local_path: Path, remote_path: str, *, mode: int = 0o644) -> bool:
        """Upload unless the remote copy already has the same sha256. True if it uploaded.

        The file goes to a temporary name, is verified, then renamed into place: a reader never
        sees a half-written file. Two commands and one SFTP session in all.
        """
        digest = _sha256_of(Path(local_path))
        folder, remote, tmp = (
            shlex.quote(str(Path(remote_path).parent)),
            shlex.quote(remote_path),
            shlex.quote(f"{remote_path}.ocptask-upload"),
        )
        there = self.run(f"mkdir -p {folder} && {{ sha256sum {remote} 2>/dev/null; true; }}")
        if there.stdout.split()[:1] == [digest]:
            return False
        with self._connected().open_sftp() as sftp:
            sftp.put(str(local_path), f"{remote_path}.ocptask-upload")
            sftp.chmod(f"{remote_path}.ocptask-upload", mode)
        moved = self.run(
            f'if [ "$(sha256sum {tmp} | cut -d" " -f1)" = {digest} ]; '
            f"then mv -f {tmp} {remote}; else rm -f {tmp}; exit 1; fi",
            check=False,
        )
        if moved.exit_code != 0:
            raise CommandFailed(
                CommandResult(
                    self.target.label,
                    f"upload {remote_path}",
                    moved.exit_code,
                    "",
                    "sha256 of the uploaded copy does not match",
                    moved.duration,
                )
            )
        return True

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


@lru_cache(maxsize=16)
def _sha256_cached(path: Path, size: int, mtime_ns: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sha256_of(path: Path) -> str:
    """The file's sha256, computed once per version of the file (a package goes to every host
    of a create)."""
    stat = path.stat()
    return _sha256_cached(path.resolve(), stat.st_size, stat.st_mtime_ns)


class SshPool:
    """One connection per host (address, port, user), created on first use, shared after."""

    def __init__(self, *, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.connect_timeout = connect_timeout
        self._connections: dict[tuple[str, int, str], SshConnection] = {}
        self._lock = threading.Lock()

    def connection(self, target: SshTarget) -> SshConnection:
        key = (target.address, target.port, target.username)
        with self._lock:
            conn = self._connections.get(key)
            if conn is None or conn.target != target:
                if conn is not None:
                    conn.close()
                conn = SshConnection(target, connect_timeout=self.connect_timeout)
                self._connections[key] = conn
            return conn

    def close(self) -> None:
        with self._lock:
            connections, self._connections = list(self._connections.values()), {}
        for conn in connections:
            conn.close()


def _close(channel: paramiko.Channel) -> None:
    """Close a channel whose connection may already be gone (closing then cannot fail it)."""
    try:
        channel.close()
    except (EOFError, OSError, paramiko.SSHException):
        pass
