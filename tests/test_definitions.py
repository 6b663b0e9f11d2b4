"""Scheduled task definitions: fires with a controlled clock, coalescing, enable/disable, one task
per fire when several engines fire at once, and validation that names the field at fault."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine import (
    DefinitionError,
    DefinitionNotFound,
    Definitions,
    Engine,
    Node,
    Split,
    TaskType,
    Template,
)
from engine.db.store import Store
from tests.helpers import S

BACKENDS = ["sqlite", "postgres"]
TEMPLATE = Template("scheduled-noop", [Node(S + "Noop", "Only", timeout=10)])
PATH = "tests.test_definitions:TEMPLATE"
PER_HOST = Template("per-host", [Node(S + "Noop", "Each", split=Split("hosts"))])
NOT_A_TEMPLATE = 42
MINUTE = timedelta(seconds=60)
# Float timestamps inside APScheduler's interval arithmetic may be off by a microsecond.
SLACK = timedelta(milliseconds=1)


def make_template() -> Template:
    return Template("made-by-callable", [Node(S + "Noop", "Made")])


def near(actual: datetime | None, expected: datetime) -> bool:
    return actual is not None and abs(actual - expected) <= SLACK


def test_interval_fires_a_scheduled_task_with_its_definition_id(engine: Engine) -> None:
    defs = Definitions(engine.store)
    before = datetime.now(UTC)
    d = defs.add("tick", PATH, interval=60, args={"cluster": "c1"}, creator="ops")
    assert d.enabled and d.trigger == "interval" and d.expression == "60"
    assert d.next_fire_time is not None
    assert before + MINUTE - SLACK <= d.next_fire_time <= datetime.now(UTC) + MINUTE

    assert engine.fire_due(now=d.next_fire_time - timedelta(seconds=1)) == []
    (task_id,) = engine.fire_due(now=d.next_fire_time)

    record = engine.get(task_id).to_ocp()
    assert record["type"] == TaskType.SCHEDULED.value == "SCHEDULED"
    assert record["taskDefinitionId"] == d.id
    assert record["name"] == "scheduled-noop"
    assert record["creator"] == "ops"
    assert record["context"]["stringMap"]["cluster"] == "c1"
    after = defs.get(d.id)
    assert after.last_task_id == task_id
    assert near(after.next_fire_time, d.next_fire_time + MINUTE)  # strictly after the fire
    assert engine.fire_due(now=d.next_fire_time) == []  # the same fire is consumed once


def test_missed_fires_coalesce_into_one_task_and_keep_the_phase(engine: Engine) -> None:
    defs = Definitions(engine.store)
    d = defs.add("tick", PATH, interval=60)
    assert d.next_fire_time is not None
    late = d.next_fire_time + 10 * MINUTE + timedelta(seconds=30)  # 11 fires missed

    assert len(engine.fire_due(now=late)) == 1
    assert engine.fire_due(now=late) == []
    following = defs.get(d.id).next_fire_time
    assert near(following, d.next_fire_time + 11 * MINUTE)
    assert following is not None
    assert len(engine.fire_due(now=following)) == 1
    assert len(engine.list(task_type=TaskType.SCHEDULED)) == 2


def test_disabled_definitions_do_not_fire_and_reenabled_ones_do(engine: Engine) -> None:
    defs = Definitions(engine.store)
    d = defs.add("tick", PATH, interval=60)
    other = defs.add("other", PATH, interval=60, enabled=False)
    assert other.next_fire_time is None

    off = defs.disable(d.id)
    assert not off.enabled and off.next_fire_time is None
    far = datetime.now(UTC) + timedelta(days=30)
    assert engine.fire_due(now=far) == []

    before = datetime.now(UTC)
    on = defs.enable(d.id)
    assert on.enabled and on.next_fire_time is not None
    assert before + MINUTE - SLACK <= on.next_fire_time <= datetime.now(UTC) + MINUTE
    assert defs.enable(d.id) == on  # enabling an enabled definition changes nothing
    (task_id,) = engine.fire_due(now=on.next_fire_time)
    assert engine.get(task_id).task_definition_id == d.id
    assert [x.id for x in defs.list()] == [d.id, other.id]

    defs.remove(d.id)
    with pytest.raises(DefinitionNotFound):
        defs.get(d.id)
    assert engine.fire_due(now=far) == []


def test_cron_keeps_crontab_weekdays_and_fires_on_them(engine: Engine) -> None:
    """APScheduler 3 alone would read weekday 0 as Monday; crontab means Sunday."""
    defs = Definitions(engine.store)
    sunday = defs.add("weekly", "tests.test_definitions:make_template", cron="30 9 * * 0")
    first = sunday.next_fire_time
    assert first is not None
    assert (first.weekday(), first.hour, first.minute) == (6, 9, 30)  # Python: 6 is Sunday

    (task_id,) = engine.fire_due(now=first + timedelta(hours=1))
    assert engine.get(task_id).name == "made-by-callable"
    assert defs.get(sunday.id).next_fire_time == first + timedelta(days=7)

    weekdays = defs.add("workdays", PATH, cron="0 6 * * 1-5")
    assert weekdays.next_fire_time is not None and weekdays.next_fire_time.weekday() < 5
    weekend = defs.add("weekend", PATH, cron="0 6 * * sat-sun")
    assert weekend.next_fire_time is not None and weekend.next_fire_time.weekday() >= 5


def fire_together(engines: list[Engine], now: datetime) -> list[list[int]]:
    """``fire_due`` on every engine at once, each from its own thread, all with the same ``now``."""
    barrier = threading.Barrier(len(engines))
    results: list[list[int]] = [[] for _ in engines]
    errors: list[BaseException] = []

    def fire(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = engines[i].fire_due(now=now)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=fire, args=(i,)) for i in range(len(engines))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)
    return results


def test_one_task_per_fire_when_engines_fire_at_once(engine: Engine, db_url: str) -> None:
    defs = Definitions(engine.store)
    made = [defs.add(f"d{i}", PATH, interval=60) for i in range(8)]
    now = max(d.next_fire_time for d in made if d.next_fire_time is not None)
    other = Engine(db_url, parallelism=4)
    try:
        for round_ in range(1, 4):
            results = fire_together([engine, other], now)
            created = [task_id for ids in results for task_id in ids]
            assert len(created) == len(set(created)) == len(made), f"round {round_}: {results}"
            tasks = engine.list(task_type=TaskType.SCHEDULED, limit=1000)
            assert sorted(t.task_definition_id for t in tasks) == sorted(
                [d.id for d in made] * round_
            )
            now += MINUTE  # the next fire of every definition
    finally:
        other.close()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "* * * *"}, "cron"),
        ({"cron": "0 0 30 2 *"}, "cron"),  # February 30th: never fires
        ({"cron": "0 0 1 * mon"}, "cron"),  # crontab would OR the two day fields
        ({"cron": "0 0 * * 8"}, "cron"),
        ({"interval": 0}, "interval"),
        ({"interval": -5}, "interval"),
        ({"interval": float("nan")}, "interval"),
        ({"interval": True}, "interval"),
        ({}, "interval"),
        ({"interval": 60, "cron": "* * * * *"}, "interval"),
        ({"interval": 60, "template": "tests.no_such_module:TEMPLATE"}, "template"),
        ({"interval": 60, "template": "tests.test_definitions:MISSING"}, "template"),
        ({"interval": 60, "template": "tests.test_definitions:NOT_A_TEMPLATE"}, "template"),
        ({"interval": 60, "template": "tests.test_definitions.TEMPLATE"}, "template"),
        ({"interval": 60, "template": TEMPLATE}, "template"),
        ({"interval": 60, "template": "tests.test_definitions:PER_HOST"}, "args"),
        ({"interval": 60, "args": {"x": 1.5}}, "args"),
        ({"interval": 60, "name": " "}, "name"),
        ({"interval": 60, "creator": ""}, "creator"),
    ],
)
def test_refused_definitions_name_the_field_and_write_nothing(
    db_path: Path, kwargs: dict, field: str
) -> None:
    defs = Definitions(Store(str(db_path)))  # checked before any write: one backend is enough
    name = kwargs.pop("name", "bad")
    template = kwargs.pop("template", PATH)
    with pytest.raises(DefinitionError) as caught:
        defs.add(name, template, **kwargs)
    assert caught.value.fields == [field]
    assert f"{field}:" in str(caught.value)
    assert defs.list() == []
