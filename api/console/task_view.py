"""A task as its console page draws it: the DAG as inline SVG (``engine.render_dag``, the CLI's
renderer) and the state the page redraws from while the task runs, each action offered exactly
when OCP's state machine allows it (``engine.states.permitted``, the rule the operations apply)."""

from __future__ import annotations

import re
from typing import Any

from markupsafe import Markup

from engine import Engine, Task, render_dag
from engine.clock import ocp_time
from engine.states import permitted

# Graphviz's SVG starts with an XML declaration, a DOCTYPE and comments: not for inline HTML.
_PROLOG = re.compile(rb"\A.*?(?=<svg\b)", re.S)
_COMMENT = re.compile(rb"<!--.*?-->", re.S)


def dag_svg(task: Task) -> Markup:
    """The SVG element itself. Graphviz escapes every label, so the markup is safe to inline;
    nodes carry ids ``s<subtask id>`` for the page's script."""
    svg = _COMMENT.sub(b"", _PROLOG.sub(b"", render_dag(task, "svg"), count=1))
    return Markup(svg.decode())


def task_state(engine: Engine, task: Task, *, manages: bool = True) -> dict[str, Any]:
    """``manages``: the user may act on tasks (TASK_MANAGER); without it no action is offered."""
    known = engine.hosts.labels()  # one read for every host, not one per host
    hosts = task.host_labels(lambda host_id: known.get(host_id) or f"host {host_id}")
    done = sum(s.status.value == "SUCCESSFUL" for s in task.subtasks)
    return {
        "id": task.id,
        "name": task.name,
        "status": task.status.value,
        "operation": task.operation.value,
        "creator": task.creator,
        "createTime": ocp_time(task.create_time),
        "startTime": ocp_time(task.start_time),
        "finishTime": ocp_time(task.finish_time),
        "done": done,
        "total": len(task.subtasks),
        "actions": {
            "retry": manages and permitted.task_retry(task.status.value, task.operation.value),
            "rollback": manages
            and permitted.task_rollback(task.status.value, task.prohibit_rollback),
        },
        "subtasks": [
            {
                "id": s.id,
                "name": s.name,
                "status": s.status.value,
                "operation": s.operation.value,
                "runTime": s.run_time,
                "timeout": s.timeout,
                "host": hosts.get(s.id, ""),
                "parallelIdx": s.parallel_idx,
                "startTime": ocp_time(s.start_time),
                "finishTime": ocp_time(s.finish_time),
                "actions": {
                    "retry": manages
                    and permitted.subtask_retry(
                        s.status.value, s.operation.value, task.operation.value
                    ),
                    "skip": manages and permitted.subtask_skip(s.status.value),
                    "cancel": manages and permitted.subtask_cancel(s.status.value),
                },
            }
            for s in task.subtasks
        ],
    }
