"""An obproxy installed by other means, as a take-over reads it on its host: the process that
listens on the SQL port (from ``/proc``: pid, executable, working directory, command line, its
``run/obproxy.pid``), its version, and its parameters against obproxy's defaults.

Reading is split from the steps so that every rule here is plain text in, values out. The host
side is one shell script (``find_script``) whose answer is one line per process, its values in
base64: a path or an argument may hold any character but NUL. The command line may carry
secrets (``-o obproxy_sys_password=…``): it is never logged or recorded as read, only without
them (``without_secrets``, ``shown_command``).
"""

from __future__ import annotations

import base64
import posixpath
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from engine.db.subtask_log import MASK

from .packages import shown_release
from .parameter_info import parameter_info
from .secret_parameters import is_secret

NEEDED = ("awk", "base64", "readlink", "grep")
"""What the take-over's own commands run on the host (its "Check if command exists")."""
FOUND, NOTHING, NOT_OURS, MISSING = (
    "ocptask-found",
    "ocptask-nothing-listens",
    "ocptask-listener-not-ours",
    "ocptask-missing-command",
)
# Recorded as the server's own columns (its ports), or never recorded (secrets).
_PORTS = {"listen_port", "prometheus_listen_port"}
_OPTION_FLAGS = {"-o", "--optstr"}
_V_LINE = re.compile(
    r"^obproxy \((?:[^()\n]*?\s)?(\d+(?:\.\d+){2,})(?:\s+([A-Za-z0-9_.]+))?\)", re.M
)
_BINARY_INFO = re.compile(r"^ObProxy-[^\d\n]*(\d+(?:\.\d+){2,})(?:-([A-Za-z0-9_.]+))?")


def find_script(port: int) -> str:
    """Shell that prints a FOUND line per process of the login user holding the listening socket
    of ``port`` (pid, then executable, working directory, command line and pid file in base64,
    each after an ``x`` so that none is empty); NOTHING when no socket listens there, NOT_OURS
    when one does but no process of this user holds it (another user's fds cannot be read)."""
    b64 = "base64 -w0"
    return (
        f"for c in {' '.join(NEEDED)}; do command -v $c >/dev/null || "
        f"{{ echo {MISSING} $c; exit 0; }}; done; "
        f"inodes=$(awk '$4==\"0A\" && $2 ~ /:{port:04X}$/ {{print $10}}' "
        "/proc/net/tcp /proc/net/tcp6 2>/dev/null); "
        f'[ -n "$inodes" ] || {{ echo {NOTHING}; exit 0; }}; '
        'set --; for i in $inodes; do set -- "$@" -e "socket:\\[$i\\]"; done; '
        "found=; for d in /proc/[0-9]*; do "
        'ls -l "$d/fd" 2>/dev/null | grep -q "$@" || continue; p=${d#/proc/}; found=1; '
        'cwd=$(readlink "$d/cwd"); '
        f'printf "{FOUND} %s x%s x%s x%s x%s\\n" "$p" '
        f'"$(printf %s "$(readlink "$d/exe")" | {b64})" "$(printf %s "$cwd" | {b64})" '
        f'"$({b64} < "$d/cmdline")" "$(tr -dc 0-9 2>/dev/null < "$cwd/run/obproxy.pid")"; '
        f'done; [ -n "$found" ] || echo {NOT_OURS}'
    )


@dataclass(frozen=True)
class Process:
    """One process holding the port, as ``find_script`` read it."""

    pid: int
    exe: str
    cwd: str
    argv: list[str]
    pid_file: int | None  # what its working directory's run/obproxy.pid says

    def program(self) -> tuple[int, str] | None:
        """(index in argv, absolute path) of the obproxy it runs: the executable itself, or
        the script an interpreter runs (a wrapper, ocptask's stand-in); None if neither is an
        ``obproxy``."""
        if posixpath.basename(self.exe.removesuffix(" (deleted)")) == "obproxy":
            return 0, self.exe.removesuffix(" (deleted)")
        for i, arg in enumerate(self.argv[1:3], start=1):
            if posixpath.basename(arg) == "obproxy" and "/" in arg:
                return i, posixpath.normpath(posixpath.join(self.cwd, arg))
        return None

    def options(self) -> list[str]:
        """Its command line after the program."""
        found = self.program()
        return self.argv[found[0] + 1 :] if found else []

    def option(self, *names: str) -> str | None:
        """The value of an option (``--listen_port 2883``, ``-p2883``, ``--listen_port=2883``)."""
        args = self.options()
        for i, arg in enumerate(args):
            for name in names:
                if arg == name and i + 1 < len(args):
                    return args[i + 1]
                if name.startswith("--") and arg.startswith(name + "="):
                    return arg[len(name) + 1 :]
                if not name.startswith("--") and arg.startswith(name) and arg != name:
                    return arg[len(name) :]
        return None


def parse_found(stdout: str) -> tuple[str, list[Process]]:
    """(NOTHING, NOT_OURS, FOUND or ``MISSING <command>``, the processes found)."""
    found = []
    for line in stdout.splitlines():
        parts = line.split(" ")
        if parts[0] in (NOTHING, NOT_OURS) or parts[0] == MISSING:
            return " ".join(parts), []
        if parts[0] != FOUND or len(parts) != 6:
            continue
        exe, cwd, cmdline = (_decoded(p[1:]) for p in parts[2:5])
        pid_file = parts[5][1:]
        argv = cmdline.split("\0")
        if argv and argv[-1] == "":
            argv.pop()  # the command line ends with a NUL
        found.append(
            Process(int(parts[1]), exe, cwd, argv, int(pid_file) if pid_file.isdigit() else None)
        )
    return FOUND, found


def _decoded(text: str) -> str:
    return base64.b64decode(text).decode("utf-8", "replace") if text else ""


def without_secrets(options: list[str]) -> tuple[list[str], list[str]]:
    """The options with every secret ``-o`` item left out, and the names left out: obproxy
    keeps what it was given in its saved config, so a restart without them still has them."""
    kept: list[str] = []
    dropped: list[str] = []
    i = 0
    while i < len(options):
        arg = options[i]
        if arg in _OPTION_FLAGS and i + 1 < len(options):
            items = _items(options[i + 1], dropped)
            kept += [arg, items] if items else []
            i += 2
            continue
        flag = next((f for f in ("--optstr=", "-o") if arg.startswith(f) and arg != f), None)
        if flag is not None:
            items = _items(arg[len(flag) :], dropped)
            kept += [flag + items] if items else []
        else:
            kept.append(arg)
        i += 1
    return kept, dropped


def _items(optstr: str, dropped: list[str]) -> str:
    kept = []
    for item in optstr.split(","):
        name = item.partition("=")[0]
        if is_secret(name):
            dropped.append(name)
        else:
            kept.append(item)
    return ",".join(kept)


def merged_options(options: list[str], values: Mapping[str, str]) -> list[str]:
    """The options with ``values`` among their ``-o`` items: an item of the same name takes the
    given value (every place it is), the others join the last ``-o`` (a new ``-o`` at the end
    when there is none). Whatever else the command line holds stays where it was."""
    left = dict(values)
    merged: list[str] = []
    last: tuple[int, str] | None = None  # where the last -o's items are, after which flag
    i = 0
    while i < len(options):
        arg = options[i]
        if arg in _OPTION_FLAGS and i + 1 < len(options):
            merged += [arg, _with_values(options[i + 1], values, left)]
            last = (len(merged) - 1, "")
            i += 2
            continue
        flag = next((f for f in ("--optstr=", "-o") if arg.startswith(f) and arg != f), None)
        if flag is None:
            merged.append(arg)
        else:
            merged.append(flag + _with_values(arg[len(flag) :], values, left))
            last = (len(merged) - 1, flag)
        i += 1
    if left:
        extra = ",".join(f"{name}={value}" for name, value in left.items())
        if last is None:
            merged += ["-o", extra]
        else:
            at, flag = last
            items = merged[at][len(flag) :]
            merged[at] = f"{flag}{items},{extra}" if items else flag + extra
    return merged


def _with_values(optstr: str, values: Mapping[str, str], left: dict[str, str]) -> str:
    items = []
    for item in optstr.split(","):
        name = item.partition("=")[0]
        if name in values:
            item = f"{name}={values[name]}"
            left.pop(name, None)
        items.append(item)
    return ",".join(items)


def unsafe_install_dir(install: str, homes: Iterable[str]) -> str | None:
    """Why ``install`` can never be an OBProxy's own directory, None if it can: deleting an
    OBProxy taken over removes its directory, so the root, the login's home (an obproxy run as
    ``~/bin/obproxy``) and any folder holding that home are refused at the take-over and never
    removed at a delete. ``homes``: the home as the login names it and as it resolves."""
    path = posixpath.normpath(install)
    if not path.strip("/"):
        return "it is the root directory"
    for home in homes:
        home = posixpath.normpath(home)
        if path == home:
            return "it is the login's home"
        if home.startswith(path.rstrip("/") + "/"):
            return f"it holds the login's home ({home})"
    return None


def shown_command(argv: list[str]) -> str:
    """A command line for a log: each secret ``-o`` item's value masked."""

    def masked(arg: str) -> str:
        return ",".join(
            f"{item.partition('=')[0]}={MASK}" if is_secret(item.partition("=")[0]) else item
            for item in arg.split(",")
        )

    return shlex.join(masked(a) if "=" in a else a for a in argv)


def version_said(v_output: str, binary_info: str = "") -> str | None:
    """The version as OCP shows it (``4.3.1.0-1``: version-release, no distribution tag), from
    ``obproxy -V`` (``obproxy (OceanBase 4.3.1.0 1.el7)``) or else from ``SHOW PROXYINFO
    BINARY`` (``ObProxy-OceanBase 4.3.1.0-1.el7…``); None if neither says one."""
    match = _V_LINE.search(v_output) or _BINARY_INFO.search(binary_info)
    if match is None:
        return None
    version, release = match.groups()
    return f"{version}-{shown_release(release)}" if release else version


def own_parameters(
    rows: list[tuple[str, str]], version: str
) -> tuple[list[dict[str, str]], list[str]]:
    """From ``SHOW PROXYCONFIG``'s (name, value): those whose value is not obproxy's default
    (its metadata, for ``version``'s release line), as ``[{name, value}]``, and the names the
    metadata does not know (not compared). Ports (the server's own columns) and secrets are
    never among them."""
    defaults = {e["name"]: e for e in parameter_info(None, version)} or {
        e["name"]: e for e in parameter_info()
    }
    own, unknown = [], []
    for name, value in rows:
        if name in _PORTS or is_secret(name):
            continue
        known = defaults.get(name)
        if known is None:
            unknown.append(name)
        elif not _same(value, known.get("defaultValue"), known.get("type")):
            own.append({"name": name, "value": value})
    return own, unknown


def _same(value: str, default: str | None, kind: str | None) -> bool:
    if default is None:
        return value == ""
    if kind == "BOOL":
        return value.strip().lower() == default.strip().lower()
    return value == default
