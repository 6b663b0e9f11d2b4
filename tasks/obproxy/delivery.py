"""How each of a cluster's recorded parameters reaches its obproxy: at start (``-o name=value``)
or live (``ALTER PROXYCONFIG SET``). One rule for every start (``ServerSpec.start_args``), every
"Sync obproxy parameter" and the create's check of the values that will travel in ``-o``:

- A parameter that obproxy's own metadata marks ``needRestart`` (``parameter_info``) goes at
  start, from either list: set live, obproxy would store it and go on with the old value until
  its next restart.
- A startup parameter (the request's ``startupParameters``) goes at start too: that is what the
  request asked for, and it holds from obproxy's first moment.
- Any other parameter is set live, after the start: one that takes effect at once, and one the
  metadata does not know. The metadata is of one release line; a name it lacks is set live
  because there obproxy answers for it: an obproxy that has it takes it, one that does not
  refuses it and the step fails naming it, where an unknown ``-o`` name is dropped without a
  word (obproxy's ``add_extra_config_from_opt``).
- A secret (``secret_parameters.is_secret``) is always set live, whatever the list and the
  metadata say. An ``-o`` option can be read by every user of the host in ``ps`` and
  ``/proc/<pid>/cmdline`` as long as obproxy runs, and obproxy takes an ``-o`` password as its
  SHA1 stage as it stands (obd hashes it first), which is itself enough to log in with; the SQL
  travels inside ocptask's own session, and obproxy hashes what ``ALTER`` gives it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .parameter_info import needs_restart
from .secret_parameters import is_secret


@dataclass(frozen=True)
class Delivery:
    """One recorded parameter (its value as recorded: a secret's sealed), and how it goes."""

    name: str
    value: str
    at_start: bool
    why: str

    @property
    def way(self) -> str:
        return "at start (-o)" if self.at_start else "live (ALTER PROXYCONFIG SET)"


def delivery(name: str, value: str, *, startup: bool) -> Delivery:
    """How one parameter goes; ``startup``: it came in ``startupParameters``."""
    restart = needs_restart(name)
    if is_secret(name):
        return Delivery(name, value, False, "a secret: never on a command line")
    if restart:
        return Delivery(name, value, True, "obproxy needs a restart for it (needRestart)")
    if startup:
        return Delivery(name, value, True, "a startup parameter")
    if restart is None:
        return Delivery(
            name, value, False, "not in obproxy's parameter metadata: obproxy says if it has it"
        )
    return Delivery(name, value, False, "takes effect without a restart")


def deliveries(
    startup_parameters: Iterable[Mapping[str, Any]], parameters: Iterable[Mapping[str, Any]]
) -> list[Delivery]:
    """Every recorded parameter, startup ones first, each with how it goes."""
    return [
        *(delivery(p["name"], p["value"], startup=True) for p in startup_parameters),
        *(delivery(p["name"], p["value"], startup=False) for p in parameters),
    ]
