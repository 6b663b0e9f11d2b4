"""Step classes for the engine tests. Module level, so the engine can load them by className.

Behaviour is steered through module globals (which node names fail, how long things block) and
every execution is journalled, so tests can assert exactly what ran, in which order, how often.
"""

from __future__ import annotations

import threading
import time

from engine import Step, StepContext

JOURNAL: list[tuple[str, str, int]] = []
FAIL_EXECUTE: set[str] = set()
FAIL_ROLLBACK: set[str] = set()
BARRIER: threading.Barrier | None = None
GATES: dict[str, threading.Event] = {}
_lock = threading.Lock()


def reset() -> None:
    global BARRIER
    with _lock:
        JOURNAL.clear()
    FAIL_EXECUTE.clear()
    FAIL_ROLLBACK.clear()
    BARRIER = None
    for gate in GATES.values():
        gate.set()  # nothing left waiting after a test
    GATES.clear()


def record(action: str, ctx: StepContext) -> None:
    with _lock:
        JOURNAL.append((action, ctx.name, ctx.subtask_id))


def actions(kind: str) -> list[str]:
    with _lock:
        return [name for action, name, _ in JOURNAL if action == kind]


class Record(Step):
    """Journals each call; fails when its node name is in FAIL_EXECUTE / FAIL_ROLLBACK."""

    def execute(self, ctx: StepContext) -> None:
        record("execute", ctx)
        ctx.log.info(f"executing {ctx.name}")
        ctx.string_map[f"done_{ctx.name}"] = "yes"
        if ctx.name in FAIL_EXECUTE:
            raise RuntimeError(f"{ctx.name} was told to fail")

    def rollback(self, ctx: StepContext) -> None:
        record("rollback", ctx)
        if ctx.name in FAIL_ROLLBACK:
            raise RuntimeError(f"rollback of {ctx.name} was told to fail")


class Rerunnable(Record):
    """Idempotent: re-run on its own after a lost executor, journalling its clean-up first."""

    idempotent = True

    def clean(self, ctx: StepContext) -> None:
        record(f"clean after {ctx.lost_executor}", ctx)


class Gate(Step):
    """Journals its start, waits until the test opens ``GATES[name]`` (a plain wait: not
    interruptible by ctx.sleep's wake-up), then journals its end and succeeds."""

    def execute(self, ctx: StepContext) -> None:
        record("start", ctx)
        with _lock:
            gate = GATES.setdefault(ctx.name, threading.Event())
        gate.wait(timeout=30)
        record("end", ctx)


class LoggedGate(Step):
    """Logs a line, waits until the test opens ``GATES[name]``, then logs another."""

    def execute(self, ctx: StepContext) -> None:
        ctx.log.info("before the gate")
        with _lock:
            gate = GATES.setdefault(ctx.name, threading.Event())
        gate.wait(timeout=30)
        ctx.log.info("after the gate")


class Noop(Step):
    def execute(self, ctx: StepContext) -> None:
        pass


class Failing(Step):
    """Always fails its execute (another process runs it: no global can steer it there)."""

    def execute(self, ctx: StepContext) -> None:
        ctx.log.info("about to fail")
        raise RuntimeError("this step always fails")


class Sleeper(Step):
    """Blocks in a C call that no async exception can interrupt."""

    def execute(self, ctx: StepContext) -> None:
        record("start", ctx)
        try:
            time.sleep(60)
        finally:
            record("cleanup", ctx)


class Swallower(Step):
    """A busy loop that catches Exception: the interrupt must get through anyway."""

    def execute(self, ctx: StepContext) -> None:
        record("start", ctx)
        try:
            while True:
                try:
                    sum(range(1000))
                except Exception:
                    pass
        finally:
            record("cleanup", ctx)


class Poller(Step):
    """Short sleeps in a loop, as a step that polls something remote would do."""

    def execute(self, ctx: StepContext) -> None:
        record("start", ctx)
        try:
            while True:
                time.sleep(0.01)
        finally:
            record("cleanup", ctx)


class Patient(Step):
    """Waits through ctx.sleep, which wakes at once on timeout or cancel."""

    def execute(self, ctx: StepContext) -> None:
        record("start", ctx)
        ctx.sleep(60)


class PatientRerunnable(Patient):
    idempotent = True


class Meet(Step):
    """Passes only if another copy runs at the same time (a barrier of BARRIER's size)."""

    def execute(self, ctx: StepContext) -> None:
        assert BARRIER is not None
        BARRIER.wait(timeout=10)
        record("execute", ctx)


class AddKey(Step):
    """Adds its own stringMap key and a listMap element, for context-flow tests."""

    def execute(self, ctx: StepContext) -> None:
        ctx.string_map[f"from_{ctx.name}"] = str(ctx.subtask_id)
        ctx.list_map.setdefault("seen", []).append(ctx.name)
        record("execute", ctx)


class SameKey(Step):
    """Every copy sets the same stringMap key to a different value: a merge conflict."""

    def execute(self, ctx: StepContext) -> None:
        ctx.string_map["owner"] = ctx.name


_gauge_lock = threading.Lock()
GAUGE = {"now": 0, "peak": 0}


class Gauge(Step):
    """Measures how many steps run at once across the whole process."""

    def execute(self, ctx: StepContext) -> None:
        with _gauge_lock:
            GAUGE["now"] += 1
            GAUGE["peak"] = max(GAUGE["peak"], GAUGE["now"])
        try:
            time.sleep(0.2)
        finally:
            with _gauge_lock:
                GAUGE["now"] -= 1


class SessionSpinner(Step):
    """Spins inside a database write transaction, swallowing Exception."""

    def execute(self, ctx: StepContext) -> None:
        record("start", ctx)
        with ctx.session():
            while True:
                try:
                    sum(range(1000))
                except Exception:
                    pass


class Journal(Step):
    """Writes one row per execution into a table of its own, with the executor that ran it."""

    def execute(self, ctx: StepContext) -> None:
        from sqlalchemy import text

        with ctx.session() as session:
            session.execute(
                text("INSERT INTO journal (subtask_id, executor) VALUES (:s, :e)"),
                {"s": ctx.subtask_id, "e": ctx.executor},
            )
