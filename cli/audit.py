"""``ocptask audit list``: the audit events (who changed what, from where, with what result),
from a database (``--db``) or a server (``--server``, ``GET /api/v2/audit/events``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from .backend import on_backend
from .common import console

audit_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="Read the audit events: who did what."
)


def _listed(text: str | None) -> list[str]:
    return [v.strip().upper() for v in (text or "").split(",") if v.strip()]


@audit_app.command("list")
@on_backend()
def audit_list(
    source: Any,
    status: Annotated[str | None, typer.Option(help="SUCCESS or FAILED.")] = None,
    event: Annotated[
        str | None, typer.Option("--event", help="Operation events, e.g. ADD_OB_PROXIES,RETRY.")
    ] = None,
    event_type: Annotated[
        str | None, typer.Option("--event-type", help="e.g. OB_PROXY_CLUSTER_MANAGEMENT.")
    ] = None,
    operator_id: Annotated[
        str | None, typer.Option("--operator-id", help="User ids, comma-separated.")
    ] = None,
    resource: Annotated[str | None, typer.Option(help="Part of the resource's name.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=2000)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="OCP's records, as JSON.")] = False,
) -> None:
    """The newest events, one line each (``--json``: OCP's AuditEventHistory records)."""
    from rich.table import Table

    from engine.audit import EventFilter

    try:
        operators = [int(v) for v in (operator_id or "").split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter("user ids are whole numbers", param_hint="--operator-id") from None
    wanted = EventFilter(
        event_types=_listed(event_type),
        operation_events=_listed(event),
        resource_name=resource,
        operator_ids=operators,
        status=status.strip().upper() if status else None,
    )
    events = source.audit_events(wanted, limit)
    if as_json:
        typer.echo(json.dumps(events, indent=2))
        return
    table = Table("id", "time", "operator", "from", "event", "resource", "task", "type", "status")
    for e in events:
        table.add_row(
            str(e["id"]),
            _when(e["startTime"]),
            e["operatorName"] or "",
            e["clientIp"] or "local",
            e["operationEvent"],
            e["resourceName"] or (str(e["resourceId"]) if e["resourceId"] else ""),
            str(e["taskId"] or ""),
            e["executionType"],
            e["status"],
        )
    console.print(table)


def _when(text: str | None) -> str:
    if not text:
        return ""
    return datetime.fromisoformat(text).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
