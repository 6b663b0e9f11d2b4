"""Scheduled task definitions (OCP's ``taskDefinitionId``): a template, its arguments, a trigger.

A definition stores its template as an import path, not as a pickled object, so each fire uses the
code deployed at that moment and a definition survives restarts and upgrades. Trigger arithmetic
is APScheduler 3's (UTC). ``fire_due`` turns due definitions into SCHEDULED tasks; several daemons
may call it at once on one PostgreSQL database, and each fire still becomes exactly one task.
"""

from __future__ import annotations

import importlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Index, Row, bindparam, or_, update
from sqlalchemy import select as sql_select
from sqlmodel import Field, Session, SQLModel, col, select

from engine.db.records import json_column, timestamp
from engine.db.store import Store

from .clock import as_utc, utcnow
from .context import Context
from .enums import TaskType
from .errors import (
    DefinitionError,
    DefinitionNotFound,
    FieldError,
    TemplateError,
    found,
)
from .task import Task
from .template import Template

Submit = Callable[..., Task]
"""``Engine.submit``: how a due definition becomes a task."""

log = logging.getLogger("ocptask.definitions")
INTERVAL = "interval"
CRON = "cron"
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


class DefinitionRecord(SQLModel, table=True):
    __tablename__ = "task_definition"
    __table_args__ = (
        Index("ix_task_definition_due", "enabled", "next_fire_time"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str
    template: str  # "package.module:attribute": a Template, or a callable returning one
    args: dict[str, Any] = json_column(dict)  # the task context, OCP-shaped (stringMap, listMap)
    creator: str
    trigger: str  # "interval" or "cron"
    expression: str  # interval: seconds; cron: the 5-field crontab line as given
    enabled: bool = True
    # NULL while disabled. Advanced under the row lock before a fire's task is submitted.
    next_fire_time: datetime | None = timestamp()
    last_task_id: int | None = None
    create_time: datetime = timestamp(nullable=False)
    update_time: datetime = timestamp(nullable=False)


DEFINITIONS = DefinitionRecord.__table__  # type: ignore[attr-defined]
# SKIP LOCKED: a daemon never waits for a definition another daemon is firing. SQLite has no
# row locks (SQLAlchemy drops the clause); store.begin_write()'s BEGIN IMMEDIATE serialises instead.
_CLAIM = (
    sql_select(DEFINITIONS)
    .where(DEFINITIONS.c.id == bindparam("id"))
    .with_for_update(skip_locked=True)
)


@dataclass(frozen=True)
class Definition:
    id: int
    name: str
    template: str
    trigger: str
    expression: str
    enabled: bool
    next_fire_time: datetime | None
    last_task_id: int | None
    creator: str

    @classmethod
    def from_record(cls, rec: DefinitionRecord) -> Definition:
        assert rec.id is not None
        return cls(
            rec.id,
            rec.name,
            rec.template,
            rec.trigger,
            rec.expression,
            rec.enabled,
            as_utc(rec.next_fire_time),
            rec.last_task_id,
            rec.creator,
        )


class Definitions:
    """Add, list, enable, disable and remove scheduled task definitions."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.ensure_schema()

    def add(
        self,
        name: str,
        template: str,
        *,
        interval: float | None = None,
        cron: str | None = None,
        args: Any = None,
        creator: str = "admin",
        enabled: bool = True,
    ) -> Definition:
        """Store a definition firing every ``interval`` seconds or on a crontab line (UTC).

        Everything is checked first (DefinitionError names each field at fault), so a definition
        that could never fire or never submit is refused rather than failing at 3 a.m.
        """
        kind, expression, context = _check(name, template, interval, cron, args, creator)
        now = utcnow()
        with self.store.write() as session:
            rec = DefinitionRecord(
                name=name,
                template=template,
                args=context,
                creator=creator,
                trigger=kind,
                expression=expression,
                enabled=bool(enabled),
                next_fire_time=_next_after(kind, expression, now) if enabled else None,
                create_time=now,
                update_time=now,
            )
            session.add(rec)
            session.flush()
            return Definition.from_record(rec)

    def list(self) -> list[Definition]:
        with self.store.read() as session:
            query = select(DefinitionRecord).order_by(col(DefinitionRecord.id))
            return [Definition.from_record(r) for r in session.exec(query).all()]

    def get(self, definition_id: int) -> Definition:
        with self.store.read() as session:
            return Definition.from_record(_load(session, definition_id))

    def enable(self, definition_id: int) -> Definition:
        """Resume firing, from now on: fires missed while disabled are not made up.

        Enabling an enabled definition changes nothing (its interval keeps its phase).
        """
        with self.store.write() as session:
            rec = _load(session, definition_id, lock=True)
            if not rec.enabled or rec.next_fire_time is None:
                now = utcnow()
                rec.enabled = True
                rec.next_fire_time = _next_after(rec.trigger, rec.expression, now)
                rec.update_time = now
                session.add(rec)
            return Definition.from_record(rec)

    def disable(self, definition_id: int) -> Definition:
        """Stop firing. Under the row lock: no fire claims after this returns; one that claimed
        just before may still create its task a moment later (a claim commits before its
        submit)."""
        with self.store.write() as session:
            rec = _load(session, definition_id, lock=True)
            rec.enabled = False
            rec.next_fire_time = None
            rec.update_time = utcnow()
            session.add(rec)
            return Definition.from_record(rec)

    def remove(self, definition_id: int) -> None:
        """Delete the definition; tasks it created keep its id as their taskDefinitionId."""
        with self.store.write() as session:
            session.delete(_load(session, definition_id, lock=True))


def fire_due(store: Store, submit: Submit, now: datetime | None = None) -> list[int]:
    """Create one SCHEDULED task per enabled definition due at ``now``; return the task ids.

    Safe to call from any number of daemons at once. Each definition is claimed in its own
    transaction: its row is locked (SKIP LOCKED, so a row another daemon is firing is passed over),
    the due condition re-checked under the lock, and ``next_fire_time`` advanced to the first fire
    strictly after ``now`` (missed fires coalesce into this one) and committed *before* the task is
    submitted. The submit cannot share that transaction (on SQLite ``store.begin_write()`` holds a
    non-reentrant process lock, and a long submit would hold the row), so the order is chosen to
    never duplicate: a crash between the commit and the submit loses that one fire instead. A
    definition whose template or arguments no longer submit is logged and skipped, not retried.
    The tasks are only created; a daemon's dispatcher (or ``engine.start``) runs them.
    """
    store.ensure_schema()
    now = (as_utc(now) or utcnow()).astimezone(UTC)
    with store.read() as session:
        due = (
            select(DefinitionRecord.id)
            .where(
                col(DefinitionRecord.enabled).is_(True),
                col(DefinitionRecord.next_fire_time) <= now,
            )
            .order_by(col(DefinitionRecord.next_fire_time))
        )
        candidates = list(session.exec(due).all())
    created: list[int] = []
    for definition_id in candidates:
        row = _claim(store, definition_id, now)  # type: ignore[arg-type]
        if row is not None:
            task_id = _submit(store, submit, row)
            if task_id is not None:
                created.append(task_id)
    return created


def _claim(store: Store, definition_id: int, now: datetime) -> Row[Any] | None:
    """Consume the definition's due fire, or None if it is not (or no longer) ours to fire."""
    with store.begin_write() as conn:
        row = conn.execute(_CLAIM, {"id": definition_id}).first()
        due = as_utc(row.next_fire_time) if row is not None else None
        if row is None or not row.enabled or due is None or due > now:
            return None  # another daemon holds or already fired it, or it was disabled
        try:
            following = _next_after(row.trigger, row.expression, now, phase=due)
        except Exception:  # a row written by other means: park it rather than fail every poll
            log.exception("task definition %s: unusable %s trigger", row.id, row.trigger)
            following, row = None, None
        advance = update(DEFINITIONS).where(DEFINITIONS.c.id == definition_id)
        conn.execute(advance.values(next_fire_time=following, update_time=utcnow()))
        return row


def _submit(store: Store, submit: Submit, row: Row[Any]) -> int | None:
    try:
        task = submit(
            _load_template(row.template),
            row.args,
            row.creator,
            task_type=TaskType.SCHEDULED,
            task_definition_id=row.id,
        )
    except Exception:  # one broken definition must not stop the others firing
        log.exception("task definition %s (%s): this fire is skipped", row.id, row.name)
        return None
    with store.begin_write() as conn:  # two fires may finish out of order: keep the newest
        conn.execute(
            update(DEFINITIONS)
            .where(
                DEFINITIONS.c.id == row.id,
                or_(DEFINITIONS.c.last_task_id.is_(None), DEFINITIONS.c.last_task_id < task.id),
            )
            .values(last_task_id=task.id)
        )
    return task.id


def _load(session: Session, definition_id: int, *, lock: bool = False) -> DefinitionRecord:
    rec = found(
        session.get(DefinitionRecord, definition_id, with_for_update=lock),
        DefinitionNotFound,
        definition_id,
    )
    return rec


# -- triggers ---------------------------------------------------------------------------------


def _next_after(
    kind: str, expression: str, now: datetime, *, phase: datetime | None = None
) -> datetime | None:
    """The first fire strictly after ``now`` (None: never again).

    An interval keeps its phase (``phase`` + k * interval, from the fire being consumed), so a
    late poll does not drift the schedule; a new or re-enabled one first fires one interval out.
    """
    trigger: BaseTrigger
    if kind == INTERVAL:
        seconds = float(expression)
        start = phase or now + timedelta(seconds=seconds)
        trigger = IntervalTrigger(seconds=seconds, start_date=start, timezone=UTC)
    elif kind == CRON:
        trigger = CronTrigger.from_crontab(_crontab(expression), timezone=UTC)
    else:
        raise ValueError(f"unknown trigger {kind!r}")
    following = trigger.get_next_fire_time(None, now)
    if following is not None and following <= now:  # APScheduler's "next" may be now itself
        following = trigger.get_next_fire_time(following, now)
    return following


def _crontab(line: str) -> str:
    """``line`` with its day-of-week field spelled in day names, for APScheduler 3.

    APScheduler 3's ``from_crontab`` numbers weekdays from Monday (crontab: 0 and 7 are Sunday)
    and ignores a step after a name ("mon/2"): "0 9 * * 0" would fire on Mondays. Day names mean
    the same to both, so only that field is rewritten; APScheduler parses everything else.
    Crontab ORs a restricted day of month with a restricted day of week where APScheduler ANDs
    them; that combination is refused rather than silently given another meaning.
    """
    fields = line.split()
    if len(fields) != 5:
        raise ValueError(f"needs 5 fields (minute hour day month weekday), got {len(fields)}")
    if not fields[2].startswith("*") and not fields[4].startswith("*"):
        raise ValueError("restricting both day of month and day of week is not supported")
    days: set[int] = set()
    for item in fields[4].lower().split(","):
        span, slash, step = item.partition("/")
        if span == "*":
            first, last = 0, 6
        else:
            low, dash, high = span.partition("-")
            if slash and not dash:
                raise ValueError(f"weekday step {item!r} needs a range or *")
            first = _weekday(low)
            last = _weekday(high, range_end=True) if dash else first
        if slash and (not step.isdigit() or int(step) < 1):
            raise ValueError(f"weekday step {item!r} must be a whole number >= 1")
        if first > last:
            raise ValueError(f"weekday range {span!r} runs backwards")
        days.update(day % 7 for day in range(first, last + 1, int(step) if slash else 1))
    fields[4] = "*" if len(days) == 7 else ",".join(_DAYS[d] for d in sorted(days))
    return " ".join(fields)


def _weekday(token: str, *, range_end: bool = False) -> int:
    """Crontab's weekday number (0-7, 0 and 7 Sunday) or name; Sunday ends a range as 7."""
    if token.isdigit() and int(token) <= 7:
        return int(token)
    if token in _DAYS:
        index = _DAYS.index(token)
        return 7 if range_end and index == 0 else index
    raise ValueError(f"{token!r} is not a day of the week (0-7 or sun-sat)")


# -- validation -------------------------------------------------------------------------------


def _load_template(path: str) -> Template:
    """The Template that ``package.module:attribute`` names, or that calling it returns."""

    def refuse(message: str) -> DefinitionError:
        return DefinitionError([FieldError("template", message, path)])

    module_name, colon, attribute = path.partition(":") if isinstance(path, str) else ("", "", "")
    if not colon or not module_name or not attribute:
        raise refuse("must be an import path 'package.module:attribute'")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise refuse(f"cannot import {module_name!r}: {exc}") from exc
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise refuse(f"{module_name!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    if not isinstance(target, Template) and callable(target):
        try:
            target = target()
        except Exception as exc:
            raise refuse(f"calling {path} raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(target, Template):
        raise refuse(
            f"{path} is a {type(target).__name__}, not a Template"
            " (or a zero-argument callable returning one)"
        )
    return target


def _check(
    name: Any, template: Any, interval: Any, cron: Any, args: Any, creator: Any
) -> tuple[str, str, dict[str, Any]]:
    """Every problem at once, as DefinitionError; else (trigger, expression, stored args)."""
    problems: list[FieldError] = []
    if not isinstance(name, str) or not name.strip():
        problems.append(FieldError("name", "must be a non-empty string", name))
    if not isinstance(creator, str) or not creator.strip():
        problems.append(FieldError("creator", "must be a non-empty string", creator))
    kind, expression = "", ""
    if (interval is None) == (cron is None):
        problems.append(FieldError("interval", "give exactly one of interval and cron"))
    elif interval is not None:
        kind = INTERVAL
        ok = isinstance(interval, int | float) and not isinstance(interval, bool)
        try:
            ok = ok and math.isfinite(interval) and timedelta(seconds=interval) > timedelta(0)
        except OverflowError:
            ok = False
        if ok:
            expression = str(int(interval)) if float(interval).is_integer() else repr(interval)
        else:
            problems.append(
                FieldError("interval", "must be a positive number of seconds", interval)
            )
    else:
        kind = CRON
        try:
            if not isinstance(cron, str):
                raise ValueError("must be a string")
            if _next_after(CRON, cron, utcnow()) is None:
                raise ValueError("never fires")
            expression = " ".join(cron.split())
        except ValueError as exc:
            problems.append(FieldError("cron", f"not a usable crontab line: {exc}", cron))
    loaded: Template | None = None
    try:
        loaded = _load_template(template)
    except DefinitionError as exc:
        problems.extend(exc.errors)
    stored: dict[str, Any] = {}
    try:
        context = Context.of(args)
        stored = {"stringMap": context.string_map, "listMap": context.list_map}
        if loaded is not None:
            loaded.expand(context)  # a split key the arguments lack would fail every fire
    except (TypeError, TemplateError) as exc:
        problems.append(FieldError("args", str(exc)))
    if problems:
        raise DefinitionError(problems)
    return kind, expression, stored
