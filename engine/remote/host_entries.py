"""What a host registration must hold (``HostRegistry.add``'s entry): each field checked, every
problem named, before anything is written."""

from __future__ import annotations

import re
from typing import Any

from paramiko.hostkeys import HostKeyEntry

from engine.errors import FieldError
from engine.text import NAME_FORBIDDEN, VALUE_FORBIDDEN, address_problem, first_forbidden

from .host_record import HOST_KINDS

USERNAME = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
_TEXTS = {"alias": 128, "description": 1024, "serialNumber": 128, "publishPorts": 1024}
"""OCP's optional host fields (batchCreate's): kept as given."""


def check_entry(entry: dict[str, Any]) -> list[FieldError]:
    if not isinstance(entry, dict):
        return [FieldError("(host)", "must be a JSON object of host fields", None)]
    problems: list[FieldError] = []
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 128:
        problems.append(FieldError("name", "must be a non-empty string of at most 128", name))
    elif problem := first_forbidden(name, NAME_FORBIDDEN):
        problems.append(FieldError("name", problem, None))
    address = entry.get("innerIpAddress")
    if problem := address_problem(address):
        problems.append(FieldError("innerIpAddress", problem, None))
    port = entry.get("sshPort", 22)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        problems.append(FieldError("sshPort", "must be a port number 1-65535", port))
    user = entry.get("username")
    if not isinstance(user, str) or not USERNAME.match(user):
        problems.append(FieldError("username", "must be a valid login name", user))
    key, password = entry.get("privateKeyPath"), entry.get("password")
    if bool(key) == bool(password):
        problems.append(
            FieldError("privateKeyPath", "give exactly one of privateKeyPath and password")
        )
    if not isinstance(entry.get("trustOnFirstUse", False), bool):
        problems.append(FieldError("trustOnFirstUse", "must be true or false"))
    line = entry.get("hostKey")
    if line is not None and (not isinstance(line, str) or HostKeyEntry.from_line(line) is None):
        problems.append(FieldError("hostKey", "must be a known_hosts line", line))
    for field, limit in _TEXTS.items():
        value = entry.get(field)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            problems.append(FieldError(field, f"must be a string of at most {limit}", value))
        elif value is not None and (problem := first_forbidden(value, VALUE_FORBIDDEN)):
            problems.append(FieldError(field, problem, None))
    kind = entry.get("kind")
    if kind is not None and kind not in HOST_KINDS:
        problems.append(FieldError("kind", f"must be one of {', '.join(HOST_KINDS)}", kind))
    return problems
