"""Shell text about obproxy processes on a host, read from /proc: whether an install's process
lives, whether it owns a port, whether anything listens on one, and the library path it starts
with. Values are quoted with ``shlex.quote``; nothing here runs anything."""

from __future__ import annotations

import ipaddress
import shlex

q = shlex.quote


def library_path(install: str) -> str:
    """The shell prefix that puts the install's ``lib/`` first on the library path, as obd
    starts obproxy: the real package bundles its libstdc++ there."""
    return f"LD_LIBRARY_PATH={q(install + '/lib')}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}"


def owns_port(port: int) -> str:
    """Shell that succeeds if process ``$p`` holds the listening socket of ``port``."""
    return (  # a subshell: its exit ends only the check
        f"( for i in $(awk '$4==\"0A\" && $2 ~ /:{port:04X}$/ {{print $10}}' "
        "/proc/net/tcp /proc/net/tcp6 2>/dev/null); do "
        'ls -l /proc/$p/fd 2>/dev/null | grep -q "socket:\\[$i\\]" && exit 0; done; exit 1 )'
    )


def live(install: str) -> str:
    """Shell that sets ``$p`` to the pid in the install's run/obproxy.pid and succeeds only if
    that process lives and runs in the install directory: after a crash or a reboot the number
    may belong to another process of the user, which must never be stopped in its place."""
    return (
        f'p=$(cat {q(install)}/run/obproxy.pid 2>/dev/null) && kill -0 "$p" 2>/dev/null && '
        f'[ "$(readlink /proc/$p/cwd)" = "$(cd {q(install)} 2>/dev/null && pwd -P)" ]'
    )


def listening(address: str, port: int) -> str:
    """Shell printing a listening socket on ``port`` that takes connections for ``address``
    (bound to it, or to every address): hosts sharing one kernel (containers, the sandbox)
    each see the others' sockets in /proc/net/tcp."""
    try:
        packed = ipaddress.IPv4Address(address).packed
        mine = f"{int.from_bytes(packed, 'little'):08X}"
    except ipaddress.AddressValueError:
        mine = "-"  # an IPv6 address: the wildcard binds still count
    return (
        f'awk -v p=:{port:04X} -v a={mine} \'$4=="0A" && '
        '($2 == a p || $2 == "00000000" p || $2 == "00000000000000000000000000000000" p)\' '
        "/proc/net/tcp /proc/net/tcp6 2>/dev/null | head -1; true"
    )
