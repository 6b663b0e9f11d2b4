"""The character rules of everything ocptask keeps and shows: names (hosts, clusters, users,
parameters), free-form values, and IP addresses. One copy, used by the engine's own registries
and by every task package's request models (``tasks.validation``), so that what one surface
refuses no other lets through: a name that reaches a terminal (``ocptask host list``) or a log
line cannot carry escape codes, line breaks or text that reads backwards.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Mapping

NAME_FORBIDDEN = {
    "Cc": "control characters",
    "Cf": "invisible format characters",
    "Cs": "surrogate code points",
    "Co": "private-use characters",
    "Cn": "unassigned code points",
    "Zl": "line separators",
    "Zp": "paragraph separators",
}
"""Unicode general categories a name may not contain, with what to call them in a message."""
VALUE_FORBIDDEN = {k: v for k, v in NAME_FORBIDDEN.items() if k in ("Cc", "Cf", "Cs", "Zl", "Zp")}
"""A value may hold spaces and any printable text, but nothing that breaks a line or a terminal,
reorders or hides text (bidirectional overrides, zero-width characters: format characters), or
cannot be written as UTF-8 (a lone surrogate)."""
BLANK_LOOKALIKES = frozenset("\u115f\u1160\u2800\u3164\uffa0")
"""Characters in visible categories that nevertheless render as nothing."""
_ZONE = re.compile(r"[A-Za-z0-9_.-]{1,15}")  # an interface name (IFNAMSIZ) or index


def first_forbidden(text: str, forbidden: Mapping[str, str]) -> str | None:
    """What is wrong with ``text`` under ``forbidden`` (NAME_FORBIDDEN or VALUE_FORBIDDEN), with
    the character and its position; None when nothing is."""
    for position, char in enumerate(text):
        category = unicodedata.category(char)
        if category in forbidden:
            return (
                f"must not contain {forbidden[category]} (U+{ord(char):04X} at position {position})"
            )
    return None


def address_problem(text: object) -> str | None:
    """What is wrong with an IP address, None when nothing is. Python's ``ipaddress`` takes any
    text after an IPv6 address's ``%`` as its zone: here a zone is an interface name or index."""
    if not isinstance(text, str):
        return "must be an IP address"
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return "must be an IP address"
    zone = getattr(address, "scope_id", None)
    if zone is not None and not _ZONE.fullmatch(zone):
        return "must be an IP address (a zone after % is an interface name: letters, digits, _.-)"
    return None


def surrogate_path(value: object, path: str = "") -> str | None:
    """Where in a parsed JSON document a lone surrogate sits (a key or a string), if anywhere:
    JSON's ``\\ud800`` escape parses into one, and it cannot be stored or answered as UTF-8."""
    if isinstance(value, str):
        return path or "(body)" if any("\ud800" <= c <= "\udfff" for c in value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if any("\ud800" <= c <= "\udfff" for c in str(key)):
                return path or "(body)"
            found = surrogate_path(item, where)
            if found:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = surrogate_path(item, f"{path}[{i}]")
            if found:
                return found
    return None


def byte_size(n: float) -> str:
    """``812 bytes``, ``12.3 KiB``, ``4.0 MiB``, ``1.2 GiB``: a size as people read it."""
    if n < 1024:
        return f"{int(n)} bytes"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if n < 1024 or unit == "GiB":
            break
    return f"{n:.1f} {unit}"
