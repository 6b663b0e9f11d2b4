"""Request checks shared by the create and the calls on an existing cluster."""

from __future__ import annotations

from sqlalchemy import Connection, select

from engine import Engine, FieldError, RequestInvalid
from engine.states import holds

from .packages import package_path
from .records import ObproxyServerRecord

SERVERS = ObproxyServerRecord.__table__  # type: ignore[attr-defined]


def unknown_hosts(engine: Engine, host_ids: list[int], field: str) -> list[FieldError]:
    """One error per host id that names no registered host (``field[i]``)."""
    known = engine.hosts.existing(host_ids)
    return [
        FieldError(f"{field}[{i}]", f"host {host_id} does not exist", host_id)
        for i, host_id in enumerate(host_ids)
        if host_id not in known
    ]


def host_addresses(
    engine: Engine, host_ids: list[int], field: str, suffix: str = ""
) -> dict[int, str]:
    """Each host's address (one query); a host not registered (removed since the request was
    checked) is a field error at ``field[i]`` + ``suffix``."""
    found = engine.hosts.addresses(host_ids)
    problems = [
        FieldError(f"{field}[{i}]{suffix}", f"host {host_id} does not exist", host_id)
        for i, host_id in enumerate(host_ids)
        if host_id not in found
    ]
    if problems:
        raise RequestInvalid(problems)
    return found


def missing_package(field: str, version: str) -> FieldError | None:
    """An error when ``version`` is not an OBProxy RPM file name in the package directory."""
    try:
        path = package_path(version)
    except ValueError as exc:
        return FieldError(field, str(exc), version)
    if not path.is_file():
        return FieldError(field, f"no package {path.name} in {path.parent}", version)
    return None


def claim_hosts(conn: Connection, host_ids: list[int], task_id: int, field: str) -> None:
    """In a submit's transaction: the task holds each host it will install on, and none of
    them runs an OBProxy already (one per host: installs of one login user share its home).
    Two submits naming one host, for one cluster or two, cannot both pass: the second waits
    for the first's hold and is refused while it runs, or sees the server row it wrote."""
    for host_id in host_ids:
        holds.take(conn, host_hold(host_id), task_id, f"host {host_id}")
    busy = busy_hosts(conn, host_ids, field)
    if busy:
        raise RequestInvalid(busy)


def busy_hosts(conn: Connection, host_ids: list[int], field: str) -> list[FieldError]:
    """One error per host that runs an OBProxy already (``field[i]``)."""
    query = select(SERVERS.c.id, SERVERS.c.host_id, SERVERS.c.cluster_id).where(
        SERVERS.c.host_id.in_(host_ids)
    )
    taken = {row.host_id: row for row in conn.execute(query)}
    return [
        FieldError(
            f"{field}[{i}]",
            f"host {host_id} already runs OBProxy {taken[host_id].id} of OBProxy cluster "
            f"{taken[host_id].cluster_id}",
            host_id,
        )
        for i, host_id in enumerate(host_ids)
        if host_id in taken
    ]


def host_hold(host_id: int) -> str:
    return f"obproxy_host:{host_id}"


def forget_hosts(conn: Connection, host_ids: list[int]) -> None:
    """The hosts' OBProxy rows are gone: so go their holds (taken when they were installed)."""
    for host_id in host_ids:
        holds.forget(conn, host_hold(host_id))
