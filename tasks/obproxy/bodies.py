"""Request bodies of the calls on an existing OBProxy cluster, field for field as OCP's.

Values are read as for the create (``request.py``, ``tasks.validation.OcpBody``): ``"2883"`` is
a port.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from engine import FieldError

from .request import MAX_HOSTS, Id, Port, Version, _Model


class AddObproxiesRequest(_Model):
    """``POST …/obproxies/batchAdd``. Note ``exporterPort`` here, ``exportPort`` at create."""

    hostIds: Annotated[list[Id], Field(min_length=1, max_length=MAX_HOSTS)]
    sqlPort: Port
    exporterPort: Port
    version: Version

    def problems(self) -> list[FieldError]:
        found = duplicates("hostIds", self.hostIds)
        if self.sqlPort == self.exporterPort:
            found.append(FieldError("exporterPort", "must differ from sqlPort", self.exporterPort))
        return found


class UpgradeRequest(_Model):
    """``POST …/obproxies/{ids}/upgrade``: the package to go to. OCP 4.2 names it by
    ``shortRpmName`` (``obproxy-1.9.1.1-1919579``); OCP 4.0 sends no body and goes to the newest
    package. ``version`` (the RPM file name, as at create) is ocptask's own, kept for its
    clients."""

    shortRpmName: Version | None = None
    version: Version | None = None


class DeleteServersRequest(_Model):
    """OCP 4.3's ``POST …/servers/delete``: the OBProxies to delete, and those of them whose
    hosts are not to be touched (gone or unreachable: their records are removed all the same)."""

    obproxyServerIds: Annotated[list[Id], Field(max_length=MAX_HOSTS)]
    skipHostOperationServerIds: Annotated[list[Id], Field(max_length=MAX_HOSTS)] = []


class ServerIdsRequest(_Model):
    """``POST …/servers/stop`` (OCP 4.3) and ``…/servers/start`` (ocptask's)."""

    obproxyServerIds: Annotated[list[Id], Field(min_length=1, max_length=MAX_HOSTS)]

    def problems(self) -> list[FieldError]:
        return duplicates("obproxyServerIds", self.obproxyServerIds)


def duplicates(field: str, ids: list[int]) -> list[FieldError]:
    seen: set[int] = set()
    found = []
    for i, value in enumerate(ids):
        if value in seen:
            found.append(FieldError(f"{field}[{i}]", f"duplicate id {value}", value))
        seen.add(value)
    return found
