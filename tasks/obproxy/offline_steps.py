"""The nodes of OCP's "Offline obproxy" around the per-host ones (Prepare offline obproxy, Stop
and uninstall obproxy, Offline obproxy exporter): Wait node, Delete obproxy info and Unreserve
host, each once for the whole task, as OCP's sample has them.

Start node → Prepare offline obproxy (per host) → Wait node → Stop and uninstall obproxy (per
host) → Delete obproxy info → Offline obproxy exporter (per host) → Unreserve host → Finish.
The per-host nodes leave what the later ones need in the context (merged at each join): the
status before, whether the host was cleared, the exporter's address.
"""

from __future__ import annotations

import socket

from sqlmodel import col, select

from engine import Step, StepContext

from .checks import forget_hosts
from .payloads import OfflinePayload
from .records import ObproxyServerRecord, touch

_BUSINESS = "com.alipay.ocp.service.task.business"


def uninstalled_key(host_id: int | str) -> str:
    """Set by "Stop and uninstall obproxy" for its host: "true", or "not asked" when the call
    skipped the host's operations."""
    return f"obproxy_uninstalled_{host_id}"


def exporter_key(host_id: int | str) -> str:
    """Set by "Prepare offline obproxy": the exporter's ``address:port`` on that host."""
    return f"obproxy_exporter_{host_id}"


class WaitNode(Step):
    """The join after every host's preparation: nothing is stopped anywhere until every
    OBProxy of the task is marked DELETING."""

    ocp_class_name = f"{_BUSINESS}.WaitNode"
    plan = "waits for every host's preparation"

    def execute(self, ctx: StepContext) -> None:
        hosts = ctx.list_map.get("host_ids", [])
        ctx.log.info(f"every host prepared ({len(hosts)}: {', '.join(hosts) or 'none'})")


class DeleteObproxyInfos(Step):
    """Remove the server row of each OBProxy whose host was cleared (or whose host the call
    asked to leave alone). One whose uninstall did not happen (skipped) stays DELETING."""

    ocp_class_name = f"{_BUSINESS}.obproxy.DeleteObproxyMetaInfoTask"
    plan = "removes the server rows of the cleared hosts"
    irreversible = True

    def execute(self, ctx: StepContext) -> None:
        payload = ctx.payload_as(OfflinePayload)
        removed: list[str] = []
        seen: set[int] = set()
        with ctx.session() as session:
            query = select(ObproxyServerRecord).where(
                col(ObproxyServerRecord.id).in_(payload.server_ids),
                ObproxyServerRecord.cluster_id == payload.cluster_id,
            )
            for server in session.exec(query.order_by(col(ObproxyServerRecord.id))).all():
                seen.add(server.id)  # type: ignore[arg-type]
                if ctx.string_map.get(uninstalled_key(server.host_id)) not in ("true", "not asked"):
                    ctx.log.warning(
                        f"the uninstall on host {server.host_id} was skipped: OBProxy server "
                        f"{server.id} stays recorded as DELETING (delete it again to clear "
                        "the host)"
                    )
                    continue
                session.delete(server)
                touch(session, server.cluster_id)
                removed.append(str(server.host_id))
                ctx.log.info(f"removed OBProxy server {server.id} on host {server.host_id}")
        gone = sorted(set(payload.server_ids) - seen)
        if gone:
            ctx.log.info(f"OBProxy servers {', '.join(map(str, gone))} were already gone")
        ctx.list_map["obproxy_removed_host_ids"] = removed


class OfflineObproxyExporter(Step):
    """OCP takes the exporter off its monitoring here. ocptask's only registration of it is
    the server row's exporter URL, gone with Delete obproxy info; what is left to check is that
    nothing answers at its address any more (the uninstall stopped the process)."""

    ocp_class_name = f"{_BUSINESS}.obproxy.OfflineObproxyExporterTask"
    plan = "checks the exporter no longer answers"
    irreversible = True  # after the rows are gone, nothing before it can be rolled back

    def execute(self, ctx: StepContext) -> None:
        host = ctx.list_map["host_ids"][ctx.parallel_idx]
        where = ctx.string_map.get(exporter_key(host))
        if ctx.string_map.get(uninstalled_key(host)) == "not asked":
            ctx.log.info(f"host {host}: left alone as the call asked; exporter not checked")
            return
        if not where:
            ctx.log.info(f"host {host}: no exporter address was recorded; nothing to check")
            return
        address, _, port = where.rpartition(":")
        try:
            with socket.create_connection((address, int(port)), timeout=5):
                answered = True
        except OSError:
            answered = False
        if answered:
            ctx.log.warning(f"host {host}: something still listens at {where} (not ours any more)")
        else:
            ctx.log.info(f"host {host}: the exporter at {where} is gone; its record went before")


class UnreserveHost(Step):
    """Release the hosts whose OBProxy row is gone: each was reserved (held) for its OBProxy
    when it was installed, so that no other install could take it meanwhile."""

    ocp_class_name = f"{_BUSINESS}.host.UnReserveHostTask"
    plan = "releases the hosts of the removed OBProxies"
    irreversible = True

    def execute(self, ctx: StepContext) -> None:
        hosts = [int(h) for h in ctx.list_map.get("obproxy_removed_host_ids", [])]
        with ctx.session() as session:
            forget_hosts(session.connection(), hosts)
        if hosts:
            ctx.log.info(f"released hosts {', '.join(map(str, hosts))} for other installs")
        else:
            ctx.log.info("no host to release (no OBProxy row was removed)")
