"""Steps: the code a subtask runs, and the context it runs with.

A step is a class with ``execute(ctx)`` and ``rollback(ctx)``; ``retry`` defaults to rollback then
execute, as OCP's ``Subtask.retry()`` does. Steps are looked up by their dotted class path, which
is what the record's ``className`` holds, so any process that can import the step can run it;
a path whose module has moved since is found where its task package says it went.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from sqlmodel import Session

from engine.db.subtask_log import SubtaskLogger
from engine.packages import TaskPackageError, task_packages

from .context import Context
from .errors import Cancelled, Interrupt, StepLoadError, TimeLimitExceeded

if TYPE_CHECKING:
    from pydantic import BaseModel

    from engine.remote.hosts import HostRegistry
    from engine.remote.ssh import SshConnection, SshTarget
    from engine.run.services import Services

    Model = TypeVar("Model", bound=BaseModel)


_class_cache: dict[str, type[Step]] = {}


class Step:
    """Base class for a subtask's code. Subclasses override ``execute`` and usually ``rollback``.

    A step must be safe to run again after a failure or an interruption part-way: ``retry`` and
    ``rollback`` can follow any prefix of ``execute``.

    ``idempotent = True`` promises more: after a run cut short anywhere (its executor lost, a
    daemon killed mid-step), ``clean`` then ``retry`` bring it to the same end as one clean run,
    with nobody deciding anything. Only such steps are re-run on their own (operation RETRY);
    any other is marked FAILED for the operator.
    """

    idempotent: ClassVar[bool] = False
    plan: ClassVar[str] = ""
    """What running the step does, in a few words, for plans shown before a submit."""
    ocp_class_name: ClassVar[str | None] = None
    """What records show as ``className`` (OCP shows Java classes there). The database keeps
    the dotted Python path, which any process can import; only the display changes."""

    def execute(self, ctx: StepContext) -> None:
        raise NotImplementedError(f"{type(self).__name__}.execute")

    def rollback(self, ctx: StepContext) -> None:
        """Undo what ``execute`` did. The default undoes nothing (for steps that change nothing)."""

    def retry(self, ctx: StepContext) -> None:
        self.rollback(ctx)
        self.execute(ctx)

    def clean(self, ctx: StepContext) -> None:
        """Runs first when the subtask's previous run lost its executor (a daemon killed mid-step;
        ``ctx.lost_executor`` names it): stop what that run may have left going. Default: nothing.
        """


class StepContext:
    """What a running step sees: its OCP context, its log, the task's payload (``payload_as``),
    its deadline, and the engine's services (hosts, SSH, its own tables and sealed secrets).

    Changes a step makes to ``string_map``/``list_map`` are saved when it succeeds and merged into
    its downstreams' contexts.
    """

    def __init__(
        self,
        *,
        task_id: int,
        subtask_id: int,
        name: str,
        operation: str,
        context: Context,
        payload: dict[str, Any],
        log: SubtaskLogger,
        services: Services,
        executor: str = "",
        lost_executor: str | None = None,
    ) -> None:
        self.task_id = task_id
        self.subtask_id = subtask_id
        self.name = name
        self.operation = operation
        self.context = context
        self.payload = payload
        self.log = log
        self._services = services
        self._parsed: dict[type[Any], Any] = {}
        self._targets: dict[int, SshTarget] = {}
        self.executor = executor  # who runs this execution (shown in the record's executor)
        # Set when this run replaces one whose executor was lost: the step cleans up first.
        self.lost_executor = lost_executor
        self.stop_requested = threading.Event()
        self.stop_reason: type[Interrupt] = Interrupt

    @property
    def string_map(self) -> dict[str, str]:
        return self.context.string_map

    @property
    def list_map(self) -> dict[str, list[str]]:
        return self.context.list_map

    @property
    def parallel_idx(self) -> int:
        return self.context.parallel_idx

    def item(self, key: str) -> str:
        """This copy's element of a split list: ``listMap[key][parallelIdx]``."""
        if self.parallel_idx < 0:
            raise LookupError(f"subtask {self.subtask_id} is not a split copy; no item of {key!r}")
        return self.list_map[key][self.parallel_idx]

    def payload_as(self, model: type[Model]) -> Model:
        """The task's payload as the pydantic model its package wrote it with, parsed once per
        execution."""
        parsed = self._parsed.get(model)
        if parsed is None:
            parsed = self._parsed[model] = model.model_validate(self.payload)
        return parsed  # type: ignore[no-any-return]

    @property
    def hosts(self) -> HostRegistry:
        return self._services.hosts

    def ssh(self, host_id: int) -> SshConnection:
        """The engine's pooled connection to a registered host (its address and credential are
        read once per execution, not per command)."""
        target = self._targets.get(host_id)
        if target is None:
            target = self._targets[host_id] = self.hosts.target(host_id)
        return self._services.ssh_pool.connection(target)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A write transaction on the engine's database, for steps that keep their own tables."""
        store = self._services.store
        store.ensure_schema()
        with store.write() as session:
            yield session

    def open_secret(self, sealed: str | None) -> str | None:
        """A secret a task package sealed with the engine's key (``Engine.store.secrets``), in
        the clear: for the step that hands it on, never for a log or a record."""
        return self._services.store.secrets.open(sealed)

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read of the engine's database, for steps that look up their own tables: it takes
        no write lock, so the chains of other hosts are not held up by it."""
        store = self._services.store
        store.ensure_schema()
        with store.read() as session:
            yield session

    def check(self) -> None:
        """Raise the pending interrupt, if the subtask timed out or was cancelled."""
        if self.stop_requested.is_set():
            raise self.stop_reason()

    def sleep(self, seconds: float) -> None:
        """Sleep, but wake and raise at once on timeout or cancel (``time.sleep`` cannot)."""
        if self.stop_requested.wait(seconds):
            raise self.stop_reason()

    def request_stop(self, reason: type[Interrupt]) -> None:
        self.stop_reason = reason
        self.stop_requested.set()


def shown_class_name(class_name: str) -> str:
    """The ``className`` a record shows for a stored class path: the step's OCP name if it has
    one, else the path itself (also when the step cannot be imported here)."""
    try:
        step = load_step(class_name)
    except StepLoadError:
        return class_name
    return step.__dict__.get("ocp_class_name") or class_name


def load_step(class_name: str) -> type[Step]:
    """Import a step class from its dotted path; StepLoadError names what is wrong."""
    cached = _class_cache.get(class_name)
    if cached is not None:
        return cached
    try:
        step = _import_step(class_name)
    except StepLoadError:
        try:
            moved = task_packages().current_path(class_name)
        except TaskPackageError:
            moved = None  # the path's own error says more about this class
        if moved is None:
            raise
        step = _import_step(moved)
    _class_cache[class_name] = step
    return step


def _import_step(class_name: str) -> type[Step]:
    parts = class_name.split(".")
    obj: Any = None
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for part in parts[cut:]:
                obj = getattr(obj, part)
        except AttributeError as exc:
            raise StepLoadError(f"cannot load step class {class_name!r}: {exc}") from None
        break
    else:
        raise StepLoadError(f"cannot load step class {class_name!r}: no importable module")
    if not (isinstance(obj, type) and issubclass(obj, Step)):
        raise StepLoadError(f"{class_name!r} is not a Step subclass")
    return obj


__all__ = ["Cancelled", "Step", "StepContext", "TimeLimitExceeded", "load_step"]
