"""Steps of the "Install obproxy" task. Each is safe to run twice and undoes exactly its own work.

className in the records is this module's path plus the class name (OCP shows Java classes there).
"""

from __future__ import annotations

from sqlmodel import Session, select

from engine import Step, StepContext

from .checks import forget_hosts
from .records import ObproxyClusterRecord, ObproxyServerRecord, touch
from .request import InstallPayload


class ClusterNameTaken(Exception):
    """Another task created a cluster with this name after ours was validated."""


class PrepareObproxyInstall(Step):
    """Record the OBProxy cluster and hand its id and name to the rest of the DAG."""

    ocp_class_name = "com.alipay.ocp.service.task.business.obproxy.PrepareObproxyInstallTask"
    plan = "records a server row per host (the cluster row is written at submit)"

    def execute(self, ctx: StepContext) -> None:
        request = ctx.payload_as(InstallPayload).request
        with ctx.session() as session:
            query = select(ObproxyClusterRecord).where(ObproxyClusterRecord.name == request.name)
            cluster = session.exec(query).first()
            if cluster is not None and cluster.task_id != ctx.task_id:
                raise ClusterNameTaken(
                    f"an OBProxy cluster named {request.name!r} already exists "
                    f"(id {cluster.id}, created by task {cluster.task_id})"
                )
            if cluster is None:
                raise LookupError(f"OBProxy cluster {request.name!r} was not recorded at submit")
            ctx.log.info(f"recorded OBProxy cluster {cluster.name!r} as id {cluster.id} at submit")
            ctx.string_map["obproxy_cluster_id"] = str(cluster.id)
            ctx.string_map["obproxy_cluster_name"] = cluster.name
            install = request.obproxyInstallParam
            if request.host_ids:
                assert install is not None and install.sqlPort and install.exportPort
                record_servers(
                    ctx,
                    session,
                    cluster.id,
                    request.host_ids,  # type: ignore[arg-type]
                    install.sqlPort,
                    install.exportPort,
                    install.version or "",
                )

    def retry(self, ctx: StepContext) -> None:
        """Execute again, without the rollback: that would drop the cluster row the submit
        wrote, and execute is safe to repeat."""
        self.execute(ctx)

    def rollback(self, ctx: StepContext) -> None:
        with ctx.session() as session:
            forget_servers(ctx, session)
            query = select(ObproxyClusterRecord).where(ObproxyClusterRecord.task_id == ctx.task_id)
            for cluster in session.exec(query).all():
                session.delete(cluster)
                ctx.log.info(f"removed OBProxy cluster {cluster.name!r} (id {cluster.id})")


def forget_servers(ctx: StepContext, session: Session) -> list[ObproxyServerRecord]:
    """Remove the server rows this task wrote, and their hosts' holds; the rows removed. Their
    clusters stay (an add's, a take-over's), with fewer OBProxies."""
    query = select(ObproxyServerRecord).where(ObproxyServerRecord.task_id == ctx.task_id)
    gone = list(session.exec(query).all())
    for server in gone:
        session.delete(server)
        touch(session, server.cluster_id)
    session.flush()
    forget_hosts(session.connection(), [server.host_id for server in gone])
    return gone


def record_servers(
    ctx: StepContext,
    session: Session,
    cluster_id: int,
    host_ids: list[int],
    sql_port: int,
    exporter_port: int,
    version: str,
) -> None:
    """A CREATING server row per host, written by this task (once: a rerun adds none)."""
    mine = select(ObproxyServerRecord.host_id).where(ObproxyServerRecord.task_id == ctx.task_id)
    have = set(session.exec(mine).all())
    if set(host_ids) - have:
        touch(session, cluster_id)
    for host_id in host_ids:
        if host_id not in have:
            session.add(
                ObproxyServerRecord(
                    cluster_id=cluster_id,
                    host_id=host_id,
                    ip=ctx.hosts.get(host_id).inner_ip_address,
                    sql_port=sql_port,
                    exporter_port=exporter_port,
                    version=version,
                    task_id=ctx.task_id,
                )
            )


class FinishObproxyInstall(Step):
    """The last node: confirm the cluster record the task created is there."""

    ocp_class_name = "com.alipay.ocp.service.task.business.obproxy.FinishTask"
    plan = "confirms the cluster is recorded"

    def execute(self, ctx: StepContext) -> None:
        cluster_id = ctx.string_map.get("obproxy_cluster_id")
        with ctx.session() as session:
            cluster = session.get(ObproxyClusterRecord, int(cluster_id)) if cluster_id else None
            if cluster is None:
                raise LookupError(f"OBProxy cluster id {cluster_id!r} from Prepare is not recorded")
        host = ctx.string_map.get("host_id")
        if host:  # a batchAdd's task: one OBProxy added to a cluster that was there
            server = ctx.string_map.get("obproxy_server_id")
            ctx.log.info(f"OBProxy {server} on host {host} is in cluster {cluster.name!r}")
        else:
            ctx.log.info(f"OBProxy cluster {cluster.name!r} (id {cluster.id}) is created")
