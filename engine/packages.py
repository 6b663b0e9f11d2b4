"""Task packages: what each declares to the engine it runs on — its tables, what keeps a host in
use, the services it puts on hosts, the commands its steps run on hosts, where its step modules
moved, and what retention must keep (the things that exist, the tasks its records point at).

The list of task packages is the ``ocptask.task_packages`` entry-point group (``pyproject.toml``
names ocptask's own); each entry is a ``register(declare)`` function. Every Engine loads the
whole list when it opens, so which tables exist, which hosts may be removed and what "Prepare
host" checks are the same in every process that opens an Engine, whatever else the process
imported. The engine imports no task package by name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from engine.enums import ServiceType
from engine.errors import OcpTaskError

log = logging.getLogger("ocptask.packages")

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlmodel import Session

GROUP = "ocptask.task_packages"

HostGuard = Callable[["Session", int], "str | None"]
"""``check(session, host_id)``: why the host is still in use (a task package's records), or
None."""


@dataclass(frozen=True)
class ServiceSummary:
    """One service on a host, as OCP's host record lists it (``services``)."""

    name: str
    type: ServiceType
    version: str | None = None
    software_package_id: int | None = None

    def to_ocp(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "softwarePackageId": self.software_package_id,
            "type": self.type.value,
            "version": self.version,
        }


HostServices = Callable[["Session", Collection[int]], Iterable[tuple[int, ServiceSummary]]]
"""``services(session, host_ids)``: (host id, service) for each service the package keeps on one
of those hosts."""


ExistingSubjects = Callable[["Connection"], Iterable[tuple[str, "int | None", "str | None"]]]
"""``existing(conn)``: (kind, key, name) of each thing the package keeps that exists now, as
``engine.concerns`` names what tasks are about (an OBProxy cluster: ``obproxy_cluster``, its id):
retention keeps the newest task about each (by key, and by name when one is given)."""

ReferencedTasks = Callable[["Connection", Collection[int]], Iterable[int]]
"""``referenced(conn, task_ids)``: those of ``task_ids`` the package's records point at (an
OBProxy cluster's create task): retention keeps them."""


@dataclass
class Declarations:
    """What the task packages declared, in the order they were registered."""

    packages: list[str] = field(default_factory=list)
    tables: list[type[Any]] = field(default_factory=list)
    host_guards: list[HostGuard] = field(default_factory=list)
    host_services: list[HostServices] = field(default_factory=list)
    host_commands: set[str] = field(default_factory=set)
    moved: dict[str, str] = field(default_factory=dict)
    existing_subjects: list[ExistingSubjects] = field(default_factory=list)
    referenced_tasks: list[ReferencedTasks] = field(default_factory=list)

    def table(self, *models: type[Any]) -> None:
        """SQLModel tables of the package: the store creates them when it opens (defining the
        model registers its table; this says whose it is)."""
        self.tables.extend(m for m in models if m not in self.tables)

    def host_guard(self, check: HostGuard) -> None:
        """What keeps a host in use: ``HostRegistry.remove`` refuses while it says why."""
        if check not in self.host_guards:
            self.host_guards.append(check)

    def services_on_hosts(self, services: HostServices) -> None:
        """What the package runs on hosts: each host's record lists it (``services``), and a
        reachable host with a service is ONLINE rather than AVAILABLE."""
        if services not in self.host_services:
            self.host_services.append(services)

    def host_commands_needed(self, *commands: str) -> None:
        """Commands the package's steps run on hosts: "Prepare host" checks each is there."""
        self.host_commands.update(commands)

    def module_moved(self, old: str, new: str) -> None:
        """A module of step classes now at ``new``: records keep the dotted class paths they
        were made with (``className``), and a task made before the move still runs."""
        self.moved[old] = new

    def subjects_that_exist(self, existing: ExistingSubjects) -> None:
        """The package's things that exist now: a purge keeps the last task about each, so a
        cluster that still exists never loses the record of what was last done to it."""
        if existing not in self.existing_subjects:
            self.existing_subjects.append(existing)

    def tasks_referenced(self, referenced: ReferencedTasks) -> None:
        """Which tasks the package's records point at: a purge never removes them."""
        if referenced not in self.referenced_tasks:
            self.referenced_tasks.append(referenced)

    def current_path(self, class_path: str) -> str | None:
        """Where a class recorded at ``class_path`` lives now, if its module moved."""
        module, _, name = class_path.rpartition(".")
        new = self.moved.get(module)
        return None if new is None else f"{new}.{name}"


class TaskPackageError(OcpTaskError):
    """A task package listed in the entry points cannot be loaded or registered."""


@cache
def task_packages() -> Declarations:
    """The declarations of every installed task package, loaded once per process."""
    declared = Declarations()
    entries = sorted(entry_points(group=GROUP), key=lambda e: e.name)
    if not entries:  # ocptask's own are always there once it is installed (pip install -e .)
        log.warning("no task packages installed (entry points %r): is ocptask installed?", GROUP)
    for entry in entries:
        try:
            register = entry.load()
            register(declared)
        except Exception as exc:
            raise TaskPackageError(
                f"task package {entry.name!r} ({entry.value}) cannot be registered: {exc}"
            ) from exc
        declared.packages.append(entry.name)
    return declared
