"""Request checks shared by the create and the calls on an existing cluster."""

from __future__ import annotations

from engine import Engine, FieldError

from .packages import package_path


def unknown_hosts(engine: Engine, host_ids: list[int], field: str) -> list[FieldError]:
    """One error per host id that names no registered host (``field[i]``)."""
    known = {h.id for h in engine.hosts.list()}
    return [
        FieldError(f"{field}[{i}]", f"host {host_id} does not exist", host_id)
        for i, host_id in enumerate(host_ids)
        if host_id not in known
    ]


def missing_package(field: str, version: str) -> FieldError | None:
    """An error when ``version`` is not an OBProxy RPM file name in the package directory."""
    try:
        path = package_path(version)
    except ValueError as exc:
        return FieldError(field, str(exc), version)
    if not path.is_file():
        return FieldError(field, f"no package {path.name} in {path.parent}", version)
    return None
