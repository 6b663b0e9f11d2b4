"""Password-like OBProxy parameters (``obproxy_sys_password``, ``observer_sys_password`` …): the
one rule that says which names are secret, and how their values are kept, shown and handed on.

- Kept: sealed with the engine's key (``Engine.store.secrets``) in the cluster's record; the
  task's payload keeps only the mask. Nothing in the database holds the value in the clear.
- Shown: as ``MASK`` wherever a value would appear (records, answers, logs, the console), the
  mask OCP's own API samples use for passwords (``"password": "******"``) and the one subtask
  logs already put over secrets (``engine.db.subtask_log``).
- Handed on: opened by the step that gives it to obproxy (by SQL, never on a command line) and
  for ocptask's own logins as ``root@proxysys`` (``admin_password``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from engine import FieldError
from engine.db.subtask_log import MASK

ADMIN_PASSWORD = "obproxy_sys_password"
"""root@proxysys's password: once obproxy has it, ocptask's own logins need it too."""
_WORDS = ("password", "passwd")
PARAMETER_LISTS = ("startupParameters", "parameters")
_UNDER_A_LIST = re.compile(rf"^({'|'.join(PARAMETER_LISTS)})(?:\[(\d+)\])?(.*)$", re.IGNORECASE)

Opener = Callable[[str | None], str | None]


def is_secret(name: object) -> bool:
    """Whether a parameter of this name holds a secret: its name says password or passwd, in
    any case. The one rule: the request, the records, the steps and the reads all ask here."""
    if not isinstance(name, str):
        return False
    lowered = name.lower()
    return any(word in lowered for word in _WORDS)


def shown_value(name: str, value: str | None) -> str | None:
    """A value as it may be shown: a secret one masked (an unset one, ``""``, stays empty: that
    it is unset is no secret)."""
    return MASK if is_secret(name) and value else value


def masked(params: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Parameters (``[{name, value}]``) as they may be shown or kept in a task's payload."""
    return [{**p, "value": shown_value(p["name"], p["value"])} for p in params]


def sealed(params: Iterable[Mapping[str, Any]], seal: Callable[[str], str | None]) -> list[dict]:
    """Parameters as the cluster's record keeps them: secret values sealed."""
    return [
        {**p, "value": seal(p["value"]) if is_secret(p["name"]) else p["value"]} for p in params
    ]


def opened(name: str, value: str, open_secret: Opener) -> str:
    """A recorded parameter's value in the clear, for the step that hands it to obproxy."""
    return (open_secret(value) or "") if is_secret(name) else value


def restorable(name: str, shown: str | None) -> str | None:
    """A value ``SHOW PROXYCONFIG`` showed, as a rollback can give it back by ALTER; None when
    it cannot: a set password, which obproxy shows as its hash (ALTER would hash it again), or
    a parameter obproxy did not show."""
    return None if is_secret(name) and shown else shown


def admin_password(params: Iterable[Mapping[str, Any]], open_secret: Opener) -> str | None:
    """The ``obproxy_sys_password`` a cluster's recorded parameters give obproxy (None: none)."""
    for param in params:
        if param["name"].lower() == ADMIN_PASSWORD:  # obproxy reads the name in any case
            return opened(param["name"], param["value"], open_secret)
    return None


def login_passwords(
    own: str | None, params: Iterable[Mapping[str, Any]], open_secret: Opener
) -> list[str]:
    """The root@proxysys passwords one OBProxy may have, to try in turn before none
    (``proxy_sql.connect``): ``own``, the sealed one it was taken over with, and the one its
    cluster's parameters give it (once its "Sync obproxy parameter" ran). Not for display."""
    found = [open_secret(own), admin_password(params, open_secret)]
    return [p for p in found if p]


def masked_errors(request: object, errors: Sequence[FieldError]) -> list[FieldError]:
    """A refused request's field errors with no secret in their rejected values: a password
    refused for its length or a control character is named by its field, not echoed back."""
    return [_masked_error(request, error) for error in errors]


def _masked_error(request: object, error: FieldError) -> FieldError:
    """Any rejected value made of several (an item, a list) is scrubbed whatever its field; a
    single value is masked when it is the value of an item whose name is secret. Key and list
    names are matched in any case: the body is read as Jackson reads it."""
    value = error.rejected_value
    if value is None:
        return error
    found = _UNDER_A_LIST.match(error.field)
    if found and isinstance(request, dict):
        field, index, rest = found.groups()
        items = _get(request, field)
        item = None
        if index is not None and isinstance(items, list) and int(index) < len(items):
            item = items[int(index)]
        named = rest.lower() == ".name" and isinstance(value, str)
        if isinstance(item, dict) and is_secret(_get(item, "name")) and not named:
            return FieldError(error.field, error.message, MASK, error.object)
    if isinstance(value, str) and error.field.lower().endswith(".name"):
        return error  # a name is no secret
    return FieldError(error.field, error.message, scrubbed(value), error.object)


def _get(mapping: Mapping[str, Any], key: str) -> Any:
    """``mapping[key]`` with the key in any case (None: absent)."""
    for k, v in mapping.items():
        if isinstance(k, str) and k.lower() == key.lower():
            return v
    return None


def scrubbed(value: Any) -> Any:
    """A rejected value of any shape with whatever could be a secret in it masked: the value of
    a ``{name, value}`` with a secret name, of a secret key, a text that names a password."""
    if isinstance(value, dict):
        secret_item = is_secret(_get(value, "name"))
        return {
            k: MASK if is_secret(k) or (secret_item and str(k).lower() != "name") else scrubbed(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [scrubbed(v) for v in value]
    return MASK if is_secret(value) else value
