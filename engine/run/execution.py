"""One run of one step: its claim's facts, its phase, and how it is interrupted.

An ``Execution`` is made when a subtask is claimed and lives until its end is recorded. Its phase
says where the worker thread is, so that the watchdog throws an interrupt only into a step that is
running (``IN_STEP``) and a worker that leaves the step takes back a throw that has not landed:

    QUEUED → IN_STEP → LEFT → FINISHED        (or ABANDONED, when the step ignored its interrupt)

Interrupts derive from BaseException (``errors.Interrupt``), so user code that catches Exception
cannot swallow them; the step's stop event wakes ``ctx.sleep`` at the same moment.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from engine.db.subtask_log import SubtaskLogger
from engine.enums import Operation
from engine.errors import Interrupt, TimeLimitExceeded
from engine.step import StepContext, load_step

from . import interrupts

log = logging.getLogger("ocptask.runner")


class Phase(Enum):
    QUEUED = "queued"
    """Claimed; no worker has entered the step yet."""
    IN_STEP = "in_step"
    """A worker thread is inside the step: the only phase an interrupt is thrown in."""
    LEFT = "left"
    """The step returned or raised; its outcome is not recorded yet."""
    FINISHED = "finished"
    """The worker is recording the outcome."""
    ABANDONED = "abandoned"
    """The step ignored its interrupt; recorded as cancelled, its late result is discarded."""


@dataclass(eq=False)
class Execution:
    task_id: int
    subtask_id: int
    operation: str
    class_name: str
    timeout: int
    ctx: StepContext
    deadline: float | None
    row: dict[str, Any]  # id, operation, upstreams, downstreams: fixed while it runs
    rolling_back: bool
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Held from draining the log buffer until its text is committed, so chunks written by the
    # watchdog and by the worker can never be stored out of order.
    flush_lock: threading.Lock = field(default_factory=threading.Lock)
    phase: Phase = Phase.QUEUED
    thread_ident: int | None = None
    interrupt: type[Interrupt] | None = None
    interrupted_at: float = 0.0
    posted: bool = False
    delivered: bool = False
    released: bool = False  # interrupted because this executor stops: handed back, not failed
    revoked: bool = False  # stopped for its lease: another executor may own the subtask now
    renewed_at: float = field(default_factory=time.monotonic)  # last time its lease was renewed

    @property
    def log(self) -> SubtaskLogger:
        return self.ctx.log

    @classmethod
    def claimed(
        cls,
        sub: Mapping[str, Any],
        ctx: StepContext,
        *,
        rolling_back: bool,
    ) -> Execution:
        """The run of a subtask just claimed (``sub``: its row as the runner reads READY ones)."""
        timeout = sub["timeout"]
        return cls(
            task_id=ctx.task_id,
            subtask_id=sub["id"],
            operation=sub["operation"],
            class_name=sub["class_name"],
            timeout=timeout,
            ctx=ctx,
            deadline=time.monotonic() + timeout if timeout > 0 else None,
            row=dict(sub),
            rolling_back=rolling_back,
        )


def run_step(e: Execution, on_cleaned: Callable[[], None]) -> tuple[bool, bool]:
    """Run the step on this thread: (succeeded, interrupted). ``on_cleaned()`` is called once
    the step cleaned up after a lost run (so a later run need not clean again)."""
    e.thread_ident = threading.get_ident()
    ok = False
    failure: BaseException | None = None
    late: type[Interrupt] | None = None
    interrupted: type[Interrupt] | None = None
    try:
        try:
            # Inside both tries: an interrupt may land the moment IN_STEP is set.
            with e.lock:
                if e.interrupt is None and e.phase is Phase.QUEUED:
                    e.phase = Phase.IN_STEP
                else:  # cancelled (or abandoned) before a worker picked it up
                    interrupted = e.interrupt or Interrupt
            if interrupted is None:
                step = load_step(e.class_name)()
                if e.ctx.lost_executor is not None:  # the last run's executor was lost
                    e.log.info(f"cleaning up after the lost run on {e.ctx.lost_executor}")
                    step.clean(e.ctx)
                    on_cleaned()
                method = {
                    Operation.EXECUTE.value: step.execute,
                    Operation.RETRY.value: step.retry,
                    Operation.ROLLBACK.value: step.rollback,
                }[e.operation]
                method(e.ctx)
                ok = True
        except Interrupt as exc:
            e.delivered = True
            interrupted = type(exc)
        except BaseException as exc:  # a failing step, whatever it raised
            failure = exc
        finally:
            late = _leave_step(e)
    except Interrupt as exc:  # landed in the handlers above, before the window closed
        e.delivered = True
        interrupted = type(exc)
        late = _leave_step(e) or late
    # From here on no interrupt can land in this thread.
    interrupted = late or interrupted
    if failure is not None and interrupted is None:
        e.log.exception(failure)
    if interrupted is not None:
        ok = False
        e.log.error(f"{interrupted.reason}: the step was interrupted; its cleanup has run")
    return ok, interrupted is not None


def _leave_step(e: Execution) -> type[Interrupt] | None:
    """Close the window in which the watchdog may throw; take back a throw not yet landed."""
    late: type[Interrupt] | None = None
    while True:
        try:
            with e.lock:
                if e.phase is Phase.IN_STEP:
                    e.phase = Phase.LEFT
                if e.posted and not e.delivered and e.thread_ident is not None:
                    interrupts.withdraw(e.thread_ident)
                    late = e.interrupt
                e.posted = False
            return late
        except Interrupt as exc:  # landed just after the step returned
            e.delivered = True
            late = type(exc)


def interrupt(e: Execution, reason: type[Interrupt]) -> None:
    """Stop the run: wake its ``ctx.sleep`` and throw ``reason`` into the step's thread (only
    while it is inside the step). The first reason stands."""
    with e.lock:
        if e.interrupt is not None or e.phase not in (Phase.QUEUED, Phase.IN_STEP):
            return
        e.interrupt = reason
        e.interrupted_at = time.monotonic()
        if reason is TimeLimitExceeded:
            e.log.error(f"timed out after {e.timeout} s: interrupting the step")
        else:
            e.log.error("cancel requested: interrupting the step")
        e.ctx.request_stop(reason)
        if e.phase is Phase.IN_STEP and e.thread_ident is not None:
            e.posted = interrupts.throw(e.thread_ident, reason)


def abandon(e: Execution, grace: float) -> bool:
    """Give up on a step that ignores its interrupt: True if it was still running (the caller
    then records it), False if it had left the step meanwhile."""
    with e.lock:
        if e.phase not in (Phase.QUEUED, Phase.IN_STEP):
            return False
        e.phase = Phase.ABANDONED
    e.log.error(
        f"the step did not stop within {grace:g} s of its interrupt (blocked in a system call); "
        "recorded as cancelled, its thread is left to finish"
    )
    return True


def finished(e: Execution) -> bool:
    """The worker is done with the step: True if its outcome is to be recorded, False if the
    run was abandoned meanwhile (its result is discarded)."""
    with e.lock:
        if e.phase is Phase.ABANDONED:
            log.info("abandoned subtask %s finished late; result discarded", e.subtask_id)
            return False
        e.phase = Phase.FINISHED
    return True
