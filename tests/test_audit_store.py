"""The audit table on both databases: what a task operation on a task no recorded call started
is recorded as, how a retry finds the call that started its task, and the filters' time
bounds in any UTC offset."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from engine import Engine, InvalidOperation
from engine.audit import (
    FAILED,
    SUCCESS,
    AuditEvents,
    EventFilter,
    Operation,
    Resource,
    acting_as,
)
from tests import steps
from tests.helpers import chain

BACKENDS = ["sqlite", "postgres"]
CALL = Operation("ADD_THINGS", "THING_MANAGEMENT", "THING")


def test_task_operations_are_events_of_the_call_that_started_the_task(engine: Engine) -> None:
    events = AuditEvents(engine.store)
    steps.FAIL_EXECUTE.add("B")
    lone = engine.submit(chain("A", "B"))  # no recorded call started it
    assert engine.run(lone.id, timeout=30).status.value == "FAILED"
    per_host = engine.submit_batch(chain("A", "B"), [(None, None), (None, None)])
    first, second = (t.id for t in per_host)
    with acting_as("ann", 3, "10.1.2.3"):
        events.record(CALL, status=SUCCESS, resource=Resource(9, "nine"), task_ids=[first, second])
        with pytest.raises(InvalidOperation):
            engine.retry(second)  # still RUNNING: refused, and recorded so
    for task in per_host:
        assert engine.run(task.id, timeout=30).status.value == "FAILED"
    with acting_as("bob", 4, "10.1.2.4"):
        engine.retry(second)
        engine.rollback(lone.id)
    found, total = events.page(EventFilter(), descending=False)
    assert total == 4
    shown = [
        (
            e["operationEvent"], e["eventType"], e["resourceType"], e["resourceId"],
            e["resourceName"], e["operatorName"], e["operatorId"], e["clientIp"], e["status"],
            e["taskId"], e["executionType"],
        )
        for e in found
    ]  # fmt: skip
    assert shown == [
        ("ADD_THINGS", "THING_MANAGEMENT", "THING", 9, "nine", "ann", 3, "10.1.2.3", SUCCESS,
         first, "NEW"),
        ("ADD_THINGS", "THING_MANAGEMENT", "THING", 9, "nine", "ann", 3, "10.1.2.3", FAILED,
         second, "RETRY"),
        ("ADD_THINGS", "THING_MANAGEMENT", "THING", 9, "nine", "bob", 4, "10.1.2.4", SUCCESS,
         second, "RETRY"),
        ("ROLLBACK_TASK", "TASK_MANAGEMENT", "TASK", lone.id, "chain", "bob", 4, "10.1.2.4",
         SUCCESS, lone.id, "NEW"),
    ]  # fmt: skip
    assert json.loads(found[2]["eventInfo"]) == {"taskId": second}

    # Time bounds in another offset than the records': the same moments.
    eight = timezone(timedelta(hours=8))
    start = datetime.fromisoformat(found[1]["startTime"]).astimezone(eight)
    end = datetime.fromisoformat(found[2]["startTime"]).astimezone(eight)
    window, count = events.page(EventFilter(start_time=start, end_time=end), descending=False)
    assert (window, count) == (found[1:3], 2)
    later, _ = events.page(EventFilter(start_time=datetime.fromisoformat(found[3]["startTime"])))
    assert found[3] in later and found[0] not in later
    assert events.page(EventFilter(operator_ids=[4], status=SUCCESS))[1] == 2
    assert events.page(EventFilter(resource_name="nin"))[1] == 3  # "nine"
    assert events.page(EventFilter(event_info='"taskId"'))[1] == 3
    assert events.page(EventFilter(operation_events=["ROLLBACK_TASK"]))[1] == 1
