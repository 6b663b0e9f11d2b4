"""Read-only snapshots of a task and its subtasks, and their OCP JSON form.

Snapshots are plain frozen dataclasses detached from any database session, so callers (the HTTP
layer, the CLI, tests) can hold and compare them freely. An Engine hands out the same snapshot
again while a task's rows are unchanged (``engine.reads.snapshots``): treat them as read-only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from . import concerns
from .clock import as_utc, ocp_time
from .context import Context
from .enums import Operation, SubtaskStatus, TaskStatus, TaskType

if TYPE_CHECKING:  # a snapshot is read without SQLAlchemy (a client's, from the API's JSON)
    from engine.db.records import SubtaskRecord, TaskRecord


@dataclass(frozen=True)
class Subtask:
    id: int
    task_id: int
    series_id: int
    name: str
    description: str
    class_name: str
    node_type: str
    timeout: int
    status: SubtaskStatus
    operation: Operation
    executor: str | None
    run_time: int
    parallel_idx: int
    prohibit_rollback: bool
    context: Context
    upstreams: tuple[int, ...]
    downstreams: tuple[int, ...]
    create_time: datetime
    start_time: datetime | None
    finish_time: datetime | None
    shown_class_name: str | None = field(default=None, compare=False, repr=False)
    """The ``className`` as read from an OCP record (``from_ocp``); None: worked out from
    ``class_name`` when shown."""

    def item(self, key: str) -> str | None:
        """This copy's element of ``listMap[key]`` (what its step reads with ``ctx.item``);
        None outside a split or past the list's end."""
        values = self.context.list_map.get(key) or []
        return values[self.parallel_idx] if 0 <= self.parallel_idx < len(values) else None

    @classmethod
    def from_record(cls, rec: SubtaskRecord | Any) -> Subtask:
        assert rec.id is not None
        return cls(
            id=rec.id,
            task_id=rec.task_id,
            series_id=rec.series_id,
            name=rec.name,
            description=rec.description,
            class_name=rec.class_name,
            node_type=rec.node_type,
            timeout=rec.timeout,
            status=SubtaskStatus(rec.status),
            operation=Operation(rec.operation),
            executor=rec.executor,
            run_time=rec.run_time,
            parallel_idx=rec.parallel_idx,
            prohibit_rollback=rec.prohibit_rollback,
            context=Context.from_json(rec.context),
            upstreams=tuple(rec.upstreams),
            downstreams=tuple(rec.downstreams),
            create_time=as_utc(rec.create_time),  # type: ignore[arg-type]
            start_time=as_utc(rec.start_time),
            finish_time=as_utc(rec.finish_time),
        )

    @classmethod
    def from_ocp(cls, data: Mapping[str, Any], task_id: int) -> Subtask:
        """From OCP's SubtaskInstance, as ``to_ocp`` writes it (what an API client reads)."""
        return cls(
            id=int(data["id"]),
            task_id=task_id,
            series_id=int(data["seriesId"]),
            name=data["name"],
            description=data.get("description") or "",
            class_name=data["className"],
            node_type=data["nodeType"],
            timeout=int(data["timeout"]),
            status=SubtaskStatus(data["status"]),
            operation=Operation(data["operation"]),
            executor=data.get("executor"),
            run_time=int(data["runTime"]),
            parallel_idx=int(data["parallelIdx"]),
            prohibit_rollback=bool(data.get("prohibitRollback")),
            context=Context.from_json(data.get("context")),
            upstreams=tuple(data.get("upstreams") or ()),
            downstreams=tuple(data.get("downstreams") or ()),
            create_time=_parsed(data["createTime"]),  # type: ignore[arg-type]
            start_time=_parsed(data.get("startTime")),
            finish_time=_parsed(data.get("finishTime")),
            shown_class_name=data["className"],
        )

    def to_ocp(self) -> dict[str, Any]:
        """OCP's SubtaskInstance: the seed sample's keys plus the documented extras."""
        shown = self.shown_class_name
        if shown is None:
            from .step import shown_class_name  # step classes (and SQLAlchemy): when needed

            shown = shown_class_name(self.class_name)
        return {
            "className": shown,
            "context": self.context.to_ocp(),
            "createTime": ocp_time(self.create_time),
            "description": self.description,
            "downstreams": list(self.downstreams),
            "executor": shown_executor(self.executor),
            "finishTime": ocp_time(self.finish_time),
            "id": self.id,
            "name": self.name,
            "nodeType": self.node_type,
            "operation": self.operation.value,
            "parallelIdx": self.parallel_idx,
            "prohibitRollback": self.prohibit_rollback,
            "runTime": self.run_time,
            "seriesId": self.series_id,
            "startTime": ocp_time(self.start_time),
            "status": self.status.value,
            "timeout": self.timeout,
            "upstreams": list(self.upstreams),
        }


@dataclass(frozen=True)
class Task:
    id: int
    name: str
    type: TaskType
    status: TaskStatus
    operation: Operation
    creator: str
    executor: str | None
    task_definition_id: int
    context: Context
    prohibit_rollback: bool
    create_time: datetime
    start_time: datetime | None
    finish_time: datetime | None
    subtasks: tuple[Subtask, ...]
    payload: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """What the task's steps read (a create's request); never part of OCP's record."""

    @classmethod
    def from_records(cls, rec: TaskRecord | Any, subs: Iterable[SubtaskRecord | Any]) -> Task:
        """From records, or rows of their tables (anything with their attributes)."""
        assert rec.id is not None
        ordered = sorted(subs, key=lambda s: s.id or 0)
        return cls(
            id=rec.id,
            name=rec.name,
            type=TaskType(rec.type),
            status=TaskStatus(rec.status),
            operation=Operation(rec.operation),
            creator=rec.creator,
            executor=rec.executor,
            task_definition_id=rec.task_definition_id,
            context=Context.from_json(rec.context),
            prohibit_rollback=rollback_prohibited(rec, ordered),
            create_time=as_utc(rec.create_time),  # type: ignore[arg-type]
            start_time=as_utc(rec.start_time),
            finish_time=as_utc(rec.finish_time),
            subtasks=tuple(Subtask.from_record(s) for s in ordered),
            payload=dict(rec.payload or {}),
        )

    @classmethod
    def from_ocp(cls, data: Mapping[str, Any]) -> Task:
        """From OCP's TaskInstance or WrappedTaskInstance with its subtasks' contexts and
        times (task detail), so that a client shows a task read over HTTP as one read from the
        database. The payload is not part of the record: it stays empty."""
        creator = data.get("creator")
        task_id = int(data["id"])
        return cls(
            id=task_id,
            name=data["name"],
            type=TaskType(data["type"]),
            status=TaskStatus(data["status"]),
            operation=Operation(data["operation"]),
            creator=creator.get("name") or "" if isinstance(creator, Mapping) else creator or "",
            executor=data.get("executor"),
            task_definition_id=int(data.get("taskDefinitionId") or 0),
            context=Context.from_json(data.get("context")),
            prohibit_rollback=bool(data.get("prohibitRollback")),
            create_time=_parsed(data["createTime"]),  # type: ignore[arg-type]
            start_time=_parsed(data.get("startTime")),
            finish_time=_parsed(data.get("finishTime")),
            subtasks=tuple(Subtask.from_ocp(s, task_id) for s in data.get("subtasks") or ()),
        )

    @property
    def host_ids(self) -> list[str]:
        """The hosts the task works on: the one of a task per host (``stringMap.host_id``, as
        OCP's per-host calls make them), else those its chains are split over
        (``listMap.host_ids``)."""
        return concerns.host_ids(self.context.to_json())

    def host_labels(self, label: Callable[[str], str]) -> dict[int, str]:
        """Subtask id -> ``label(host id)`` of the host it works on: every subtask of a task per
        host (``stringMap.host_id``), the copies of a split over ``listMap.host_ids`` (the
        per-host chains) otherwise; ``label`` asked once per host."""
        names: dict[str, str] = {}
        labels = {}
        own = self.context.string_map.get("host_id")
        for sub in self.subtasks:
            host_id = sub.item("host_ids") or own
            if host_id is None:
                continue
            if host_id not in names:
                names[host_id] = label(host_id)
            labels[sub.id] = names[host_id]
        return labels

    def subtask(self, key: int | str) -> Subtask:
        """The subtask with this id, or the only one with this name."""
        found = [
            s for s in self.subtasks if (s.id == key if isinstance(key, int) else s.name == key)
        ]
        if len(found) != 1:
            raise KeyError(f"task {self.id} has {len(found)} subtasks matching {key!r}")
        return found[0]

    def to_instance(self) -> dict[str, Any]:
        """OCP's TaskInstance as an operation that starts a task returns it: exactly the keys
        of OCP's sample response (``creator`` a name, subtasks without times or contexts)."""
        full = self.to_ocp()
        for key in _INSTANCE_EXTRAS:
            del full[key]
        for sub in full["subtasks"]:
            for key in _SUBTASK_INSTANCE_EXTRAS:
                del sub[key]
        return full

    def to_wrapped(self, creator_id: int | None) -> dict[str, Any]:
        """OCP's WrappedTaskInstance (task detail, retry, rollback): ``creator`` an object."""
        full = self.to_ocp()
        full["creator"] = {"id": creator_id, "name": self.creator}
        return full

    def to_basic(self, creator_id: int | None) -> dict[str, Any]:
        """OCP's BasicTaskInstance (paged lists): subtasks reduced to their state."""
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status.value,
            "type": self.type.value,
            "operation": self.operation.value,
            "creator": {"id": creator_id, "name": self.creator},
            "createTime": ocp_time(self.create_time),
            "startTime": ocp_time(self.start_time),
            "finishTime": ocp_time(self.finish_time),
            "subtasks": [
                {
                    "id": s.id,
                    "name": s.name,
                    "description": s.description,
                    "operation": s.operation.value,
                    "status": s.status.value,
                }
                for s in self.subtasks
            ],
        }

    def to_ocp(self) -> dict[str, Any]:
        """OCP's TaskInstance: the seed sample's keys plus createTime, finishTime and
        prohibitRollback."""
        return {
            "context": self.context.to_ocp(),
            "createTime": ocp_time(self.create_time),
            "creator": self.creator,
            "executor": shown_executor(self.executor),
            "finishTime": ocp_time(self.finish_time),
            "id": self.id,
            "name": self.name,
            "operation": self.operation.value,
            "prohibitRollback": self.prohibit_rollback,
            "startTime": ocp_time(self.start_time),
            "status": self.status.value,
            "subtasks": [s.to_ocp() for s in self.subtasks],
            "taskDefinitionId": self.task_definition_id,
            "type": self.type.value,
        }


def shown_executor(executor: str | None) -> str | None:
    """The executor as OCP shows it: the IP of the node that runs the task or subtask.

    The engine names an executor ``<ip>:<pid>`` (or a daemon's ``--name``): the pid tells two
    processes of one machine apart, which leases and claims need, and records do not show. A
    name that is no ``<ip>:<pid>`` (an operator's ``--name``) is shown as it is."""
    if executor is None:
        return None
    address, sep, pid = executor.rpartition(":")
    if sep and pid.isascii() and pid.isdigit():
        try:
            ipaddress.ip_address(address)
        except ValueError:
            return executor
        return address
    return executor


def _parsed(value: str | None) -> datetime | None:
    """An OCP time (ISO-8601 with its offset) as an aware UTC datetime."""
    return datetime.fromisoformat(value).astimezone(UTC) if value else None


_INSTANCE_EXTRAS = ("createTime", "finishTime", "prohibitRollback")
_SUBTASK_INSTANCE_EXTRAS = ("context", "createTime", "executor", "finishTime", "startTime")
_NOT_STARTED = {SubtaskStatus.PENDING.value, SubtaskStatus.READY.value}


def rollback_prohibited(task: TaskRecord, subs: Iterable[SubtaskRecord]) -> bool:
    """OCP's rule: the template's flag, or any subtask that already ran and forbids rollback."""
    if (task.context.get("stringMap") or {}).get("prohibit_rollback") == "true":
        return True
    return any(s.prohibit_rollback and s.status not in _NOT_STARTED for s in subs)
