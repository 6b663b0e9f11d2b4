"""``POST /api/v2/compute/hosts/batchCreate`` as an embedded call.

The body is OCP's: ``hostBasicDataList`` (address, serial number, alias), ``sshPort``,
``credentialId`` and the host's IDC, type, kind and published ports. The alias, description,
serial number, kind and published ports are the host record's; ocptask keeps no IDC or host-type
registry, so those ids are checked for shape and kept in the task's payload only. Two
optional extensions decide how the hosts' SSH keys are pinned: a ``hostKey`` per entry (a
known_hosts line, or just "keytype base64"), or ``trustOnFirstUse: true`` to pin whatever key
each host presents the first time. Without either that host's "Prepare host" task fails
(HostKeyMismatch): nothing is ever run on a host whose key is unknown.

As OCP does, each host gets a "Prepare host" task of its own (``stringMap.host_id``), so one
host that cannot be prepared fails its own task only. The hosts and their tasks are all made
or none: if the tasks cannot be written, the hosts registered for them are removed.
"""

from __future__ import annotations

import ipaddress
import threading
from typing import Annotated, Any, Literal

from paramiko.hostkeys import HostKeyEntry
from pydantic import AfterValidator, BaseModel, BeforeValidator, Field
from pydantic_core import PydanticCustomError

from engine import Engine, FieldError, NotFound, RequestInvalid, Task
from tasks.validation import Flag, Id, OcpBody, Port, name_text, parse, value_text

from . import audit_events
from .templates import PREPARE_HOSTS

MAX_HOSTS = 100


def _ip(raw: str) -> str:
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        raise PydanticCustomError(
            "ip_address", "{reason}", {"reason": "must be an IPv4 or IPv6 address"}
        ) from None


IpAddress = Annotated[str, Field(max_length=64), AfterValidator(_ip)]


def _joined(raw: object) -> object:
    """OCP's StringArray (``["8080:8080", "8090:8090"]``), or the comma list Spring also binds
    to one, as the host record's String keeps it."""
    if isinstance(raw, list):
        if not all(isinstance(item, str) and item and "," not in item for item in raw):
            raise PydanticCustomError(
                "port_mappings", "{reason}", {"reason": "must be a list of port mappings"}
            )
        return ",".join(raw)
    return raw


PortMappings = Annotated[str, BeforeValidator(_joined), value_text(1024)]


_Model = OcpBody


class HostBasicData(_Model):
    innerIpAddress: IpAddress
    serialNumber: Annotated[str, name_text(128)] | None = None
    alias: Annotated[str, name_text(128)] | None = Field(
        default=None, description="The host's name in ocptask (default: its address)."
    )
    hostKey: Annotated[str, value_text(16384)] | None = Field(
        default=None,
        description="ocptask's extension: the host's SSH key to pin, as a known_hosts line "
        "or 'keytype base64'.",
    )


class BatchCreateHostsRequest(_Model):
    hostBasicDataList: Annotated[list[HostBasicData], Field(min_length=1, max_length=MAX_HOSTS)]
    sshPort: Port
    credentialId: Id
    kind: Literal["DEDICATED_PHYSICAL_MACHINE", "DEDICATED_CONTAINER"] | None = None
    idcId: Id | None = None
    typeId: Id | None = None
    publishPorts: PortMappings | None = None
    alias: Annotated[str, name_text(128)] | None = None
    description: Annotated[str, value_text(1024)] | None = None
    trustOnFirstUse: Flag = Field(
        default=False,
        description="ocptask's extension: pin the key each host presents on first contact "
        "(for hosts without hostKey).",
    )


# One batchCreate at a time in this process: the checks (address or name already registered)
# and the registrations they guard must not interleave with another request's.
_LOCK = threading.Lock()


class PrepareHostsPayload(BaseModel):
    """What each task of a batchCreate keeps (its payload): the request as given, and who
    made it."""

    request: BatchCreateHostsRequest
    creator: str


@audit_events.add_hosts(BatchCreateHostsRequest)
def batch_create_hosts(engine: Engine, body: Any, creator: str = "admin") -> list[Task]:
    """Register every host of ``body`` and return their "Prepare host" tasks, one per host in
    the order of ``hostBasicDataList`` (not run here).

    All or nothing: a refused request raises RequestInvalid naming each field at fault and
    registers no host.
    """
    request = parse(BatchCreateHostsRequest, body)
    problems: list[FieldError] = []
    if engine.credentials.find(request.credentialId) is None:
        problems.append(_no_credential(request.credentialId))
    keys = [_host_key(request, i, problems) for i in range(len(request.hostBasicDataList))]
    with _LOCK:
        problems += _clashes(engine, request)
        if problems:
            raise RequestInvalid(problems)
        try:
            login = engine.credentials.login(request.credentialId)
        except NotFound:  # removed since the look above
            raise RequestInvalid([_no_credential(request.credentialId)]) from None
        added: list[int] = []
        try:
            for entry, key in zip(request.hostBasicDataList, keys, strict=True):
                host = engine.hosts.add(
                    {
                        "name": _name(request, entry),
                        "innerIpAddress": entry.innerIpAddress,
                        "sshPort": request.sshPort,
                        **login,
                        "hostKey": key,
                        "trustOnFirstUse": request.trustOnFirstUse,
                        "alias": entry.alias or request.alias,
                        "description": request.description,
                        "serialNumber": entry.serialNumber,
                        "kind": request.kind,
                        "publishPorts": request.publishPorts,
                    },
                    new=True,  # never take over a host another request registered meanwhile
                )
                added.append(host.id)
            payload = PrepareHostsPayload(request=request, creator=creator).model_dump(mode="json")
            each = [({"host_id": str(host_id)}, payload) for host_id in added]
            return engine.submit_batch(PREPARE_HOSTS, each, creator)
        except BaseException:
            for host_id in added:
                engine.hosts.remove(host_id)
            raise


def _no_credential(credential_id: int) -> FieldError:
    return FieldError(
        "credentialId",
        f"no SSH credential with id {credential_id} (register one with 'ocptask credential add')",
        credential_id,
    )


def _name(request: BatchCreateHostsRequest, entry: HostBasicData) -> str:
    return entry.alias or request.alias or entry.innerIpAddress


def _clashes(engine: Engine, request: BatchCreateHostsRequest) -> list[FieldError]:
    """Addresses and names given twice, or already registered."""
    found = []
    hosts = engine.hosts.list()
    by_address = {h.inner_ip_address: h for h in hosts}
    by_name = {h.name: h for h in hosts}
    seen_address: dict[str, int] = {}
    seen_name: dict[str, int] = {}
    for i, entry in enumerate(request.hostBasicDataList):
        where = f"hostBasicDataList[{i}]"
        address = entry.innerIpAddress
        if address in seen_address:
            found.append(
                FieldError(
                    f"{where}.innerIpAddress",
                    f"duplicate address {address} "
                    f"(also hostBasicDataList[{seen_address[address]}])",
                    address,
                )
            )
            continue
        seen_address[address] = i
        if address in by_address:
            host = by_address[address]
            found.append(
                FieldError(
                    f"{where}.innerIpAddress",
                    f"host {host.id} ({host.name}) already has address {address}",
                    address,
                )
            )
            continue
        name = _name(request, entry)
        field = f"{where}.alias" if entry.alias else "alias" if request.alias else None
        field = field or f"{where}.innerIpAddress"
        if name in seen_name:
            other = seen_name[name]
            hint = (
                "; with several hosts give each its own hostBasicDataList[i].alias"
                if field == "alias"
                else ""
            )
            found.append(
                FieldError(
                    field,
                    f"name {name!r} is also hostBasicDataList[{other}]'s{hint}",
                    name,
                )
            )
        elif name in by_name:
            found.append(
                FieldError(field, f"host {by_name[name].id} is already named {name!r}", name)
            )
        seen_name.setdefault(name, i)
    return found


def _host_key(request: BatchCreateHostsRequest, i: int, problems: list[FieldError]) -> str | None:
    """The entry's hostKey as the known_hosts line the SSH layer pins, or None."""
    entry = request.hostBasicDataList[i]
    if entry.hostKey is None:
        return None
    port = request.sshPort
    pattern = entry.innerIpAddress if port == 22 else f"[{entry.innerIpAddress}]:{port}"
    line = entry.hostKey.strip()
    if len(line.split()) == 2:  # "keytype base64": name the host ourselves
        line = f"{pattern} {line}"
    where = f"hostBasicDataList[{i}].hostKey"
    try:
        parsed = HostKeyEntry.from_line(line)
    except Exception:  # paramiko raises several kinds for a bad key blob
        parsed = None
    if parsed is None or parsed.key is None:
        problems.append(
            FieldError(where, "must be a known_hosts line or 'keytype base64'", entry.hostKey)
        )
        return None
    if pattern not in parsed.hostnames:
        problems.append(
            FieldError(
                where,
                f"names {','.join(parsed.hostnames)}, not this host ({pattern})",
                entry.hostKey,
            )
        )
        return None
    return f"{pattern} {parsed.key.get_name()} {parsed.key.get_base64()}"
