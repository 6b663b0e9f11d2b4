"""The install nodes OCP has around the per-host chain: "Prepare obproxy install" of a per-host
task (batchAdd), "Prepare create obproxy" and "Refresh ocp agent config".

OCP's batchAdd answers one "Install obproxy" task per host whose context names the host and its
new OBProxy server (``host_id``, ``obproxy_server_id``): the server row is written at submit,
so those ids exist from the start, as in OCP's sample. A node OCP has and ocptask has nothing
of its own for (there is no OCP agent) still runs under OCP's name and says in its log what it
did and why, so a record reads as OCP's does without pretending.
"""

from __future__ import annotations

from engine import Step, StepContext
from tasks.hosts.steps import reach

from .cluster_steps import PrepareObproxyInstall
from .obproxy_host import HostStep
from .process_shell import listening
from .records import ObproxyClusterRecord, ObproxyServerRecord

_BUSINESS = "com.alipay.ocp.service.task.business"


class PrepareObproxyInstallOne(PrepareObproxyInstall):
    """A per-host task's first node: the cluster and this host's server row (written at the
    submit) are still recorded. Its rollback is the create's: the rows this task wrote go."""

    ocp_class_name = f"{_BUSINESS}.obproxy.PrepareObproxyInstallTask"
    plan = "checks the cluster and the OBProxy server row written at submit are recorded"

    def execute(self, ctx: StepContext) -> None:
        cluster_id = int(ctx.string_map["obproxy_cluster_id"])
        server_id = int(ctx.string_map["obproxy_server_id"])
        with ctx.reading() as session:
            cluster = session.get(ObproxyClusterRecord, cluster_id)
            server = session.get(ObproxyServerRecord, server_id)
        if cluster is None:
            raise LookupError(f"OBProxy cluster {cluster_id} is no longer recorded")
        if server is None or server.cluster_id != cluster_id or server.task_id != ctx.task_id:
            raise LookupError(
                f"OBProxy server {server_id} this task recorded at submit is no longer there "
                "(rolled back?)"
            )
        ctx.log.info(
            f"OBProxy cluster {cluster.name!r} (id {cluster.id}): OBProxy server {server_id} "
            f"on host {server.host_id}, recorded at submit ({server.status})"
        )


class PrepareCreateObproxy(HostStep):
    """Reach the host (pinning its key, recording its facts) and check that the OBProxy's SQL
    and exporter ports are free there before anything is installed: a port taken by another
    program would otherwise fail the start, after the package was unpacked."""

    ocp_class_name = f"{_BUSINESS}.obproxy.PrepareCreateObproxyTask"
    plan = "reads: connects over SSH, the SQL and exporter ports are free on the host"

    def run(self, ctx: StepContext) -> None:
        reach(ctx, self.host_id(ctx), self.ssh(ctx))
        spec = self.spec(ctx)
        taken = []
        address = self.target(ctx).address
        for port in (spec.sql_port, spec.exporter_port):
            found = self.sh(ctx, listening(address, port)).stdout.strip()
            if found:
                taken.append(port)
        if taken and self.pid(ctx, self.install_dir(ctx)) is not None:
            ctx.log.info("the listener is this install's own obproxy (a run again): ports kept")
            taken = []
        if taken:
            raise RuntimeError(
                f"host {self.host_id(ctx)}: port {', '.join(map(str, taken))} already listened "
                "on by another program"
            )
        ctx.log.info(
            f"OBProxy server {spec.server_id}: ports {spec.sql_port} (SQL) and "
            f"{spec.exporter_port} (exporter) are free on host {self.host_id(ctx)}"
        )


class RefreshAgentConfig(Step):
    """OCP refreshes its host agent's configuration here, so that the agent collects the new
    OBProxy's metrics and logs. ocptask installs no agent: it reads /metrics itself (Register
    obproxy exporter) and runs its commands over SSH, so there is nothing to refresh."""

    ocp_class_name = f"{_BUSINESS}.host.RefreshAgentConfigTask"
    plan = "nothing: ocptask has no host agent"

    def execute(self, ctx: StepContext) -> None:
        host = ctx.string_map.get("host_id") or (
            ctx.list_map.get("host_ids", [None])[ctx.parallel_idx]
            if ctx.parallel_idx >= 0
            else None
        )
        ctx.log.info(
            f"host {host}: nothing refreshed. ocptask installs no OCP agent; it reads the "
            "OBProxy's /metrics itself (next node) and reaches the host over SSH"
        )
