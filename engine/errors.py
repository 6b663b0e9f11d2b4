"""One exception tree for everything the engine refuses, plus the interrupts it throws into steps.

Errors that OCP's API reports carry OCP's numeric code so that the HTTP layer can map them without
a lookup table of its own. The interrupts are deliberately *not* part of the tree: they derive from
``BaseException`` so that a step's ``except Exception`` cannot swallow a timeout or a cancel.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

T = TypeVar("T")


class OcpTaskError(Exception):
    """Root of every error ocptask raises on purpose; ``code`` is OCP's code, if it has one."""

    code: int | None = None

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class NotFound(OcpTaskError, LookupError):
    """An unknown id of anything (host, cluster, user): OCP's 10002, HTTP 404. Each kind of
    thing has its subclass, whose ``what`` names it in the message (see ``found``)."""

    code = 10002
    what: ClassVar[str] = "Object"


class TaskNotFound(NotFound):
    """An unknown task id, or a subtask id that is not part of the given task (OCP 20000)."""

    code = 20000
    what = "Task"


class HostNotFound(NotFound):
    what = "Host"


class CredentialNotFound(NotFound):
    what = "Credential"


class DefinitionNotFound(NotFound):
    what = "Task definition"


def found(value: T | None, error: type[NotFound], key: object) -> T:
    """``value``, or ``error`` saying that the ``error.what`` with ``key`` does not exist: the
    one get-or-raise."""
    if value is None:
        raise error(f"{error.what} {key} does not exist.")
    return value


class ResourceBusy(OcpTaskError):
    """Another task holds what this operation would change (``holds``): HTTP 409, OCP's COM10005
    ("A conflict occurred during request processing. Please try again.")."""

    code = 10005


class InvalidOperation(OcpTaskError):
    """The operation is not legal in the current state (OCP 20003, TASK_STATE_INVALID; its error
    table's TSK10007), in OCP's words, which name the task (or subtask) by its id."""

    code = 20003

    def __init__(self, task_id: int, state: str) -> None:
        super().__init__(
            f"This operation is not supported for the {task_id} task in the {state} state."
        )
        self.task_id = task_id
        self.state = state


class RollbackProhibited(OcpTaskError):
    """The task, or one of its subtasks that already ran, forbids rollback (OCP 20004)."""

    code = 20004

    def __init__(self, task_id: int) -> None:
        super().__init__(f"Task {task_id} can not rollback.")
        self.task_id = task_id


class TemplateError(OcpTaskError):
    """A task template is malformed: unknown upstream, cycle, duplicate node, bad split."""


class ContextConflict(OcpTaskError):
    """Two upstream contexts disagree on a stringMap key, so the downstream cannot start."""


class StepLoadError(OcpTaskError):
    """A subtask's className cannot be imported as a Step class."""


class RunnerError(OcpTaskError):
    """The runner could not drive a task (e.g. its database went away); the cause is chained."""


class WaitTimeout(OcpTaskError, TimeoutError):
    """``Engine.wait`` gave up before the task stopped progressing."""


@dataclass(frozen=True)
class FieldError:
    """One rejected request field, shaped like OCP's ``subErrors`` entries."""

    field: str
    message: str
    rejected_value: Any = None
    object: str | None = None  # what holds the field ("body", "query"); None: the request's own

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def members(field: str, values: Iterable[object], allowed: Iterable[str]) -> list[str]:
    """The values of an enum filter (OCP's StringArray), in any case, as the names they are
    among ``allowed``; any other value is one field error naming ``field`` and them all. The
    one rule every list's enum filters follow."""
    names = list(allowed)
    given = [str(v).strip().upper() for v in values]
    given = [v for v in given if v]
    bad = [v for v in given if v not in names]
    if bad:
        message = f"must be among {', '.join(names)}"
        raise RequestInvalid([FieldError(field, message, ",".join(bad))])
    return given


class RequestInvalid(OcpTaskError, ValueError):
    """A request failed validation. Nothing was written; ``errors`` names every field at fault."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors = list(errors)
        super().__init__("invalid request: " + "; ".join(str(e) for e in self.errors))

    @property
    def fields(self) -> list[str]:
        return [e.field for e in self.errors]


class DefinitionError(RequestInvalid):
    """A scheduled task definition was refused: bad trigger, template, arguments or name.

    A RequestInvalid, so callers (and the HTTP layer) treat it as any refused request; nothing was
    written and ``errors`` names every field at fault.
    """

    def __init__(self, errors: Sequence[FieldError]) -> None:
        super().__init__(errors)
        self.message = "invalid task definition: " + "; ".join(str(e) for e in self.errors)
        self.args = (self.message,)


@dataclass(frozen=True)
class CommandResult:
    """What one remote command did: enough to debug it without a second look at the host."""

    host: str
    command: str
    exit_code: int | None
    stdout: str
    stderr: str
    duration: float

    def tail(self, lines: int = 10) -> str:
        text = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return "\n".join(text[-lines:])


class SshError(OcpTaskError):
    """Reaching or using a host over SSH failed. ``host`` names it (name and address)."""

    def __init__(self, host: str, message: str) -> None:
        super().__init__(f"{host}: {message}")
        self.host = host


class HostUnreachable(SshError):
    """No SSH session could be set up: refused, timed out, or no SSH banner."""


class ConnectionLost(HostUnreachable):
    """The SSH connection died while a command ran: whether (or how far) it ran is unknown."""


class HostKeyMismatch(SshError):
    """The host presented a key other than the pinned one (or none is pinned): nothing ran."""


class AuthFailed(SshError):
    """The host refused our credential."""


class CommandFailed(SshError):
    """A remote command exited non-zero; ``result`` has its exit code and output."""

    def __init__(self, result: CommandResult) -> None:
        detail = result.tail()
        super().__init__(
            result.host,
            f"command exited {result.exit_code}: {result.command}"
            + (f"\n{detail}" if detail else ""),
        )
        self.result = result


class CommandTimedOut(SshError):
    """A remote command ran past its timeout; its process group was killed on the host."""

    def __init__(self, result: CommandResult, timeout: float) -> None:
        super().__init__(result.host, f"command timed out after {timeout:g} s: {result.command}")
        self.result = result
        self.timeout = timeout


class Interrupt(BaseException):
    """Thrown into a running step to stop it. Not an ``Exception``: steps cannot swallow it.

    A step's ``finally`` blocks and context managers still run, which is how it cleans up.
    """

    reason = "interrupted"


class TimeLimitExceeded(Interrupt):
    """The subtask ran past its ``timeout``."""

    reason = "timed out"


class Cancelled(Interrupt):
    """An operator cancelled the running subtask."""

    reason = "cancelled"
