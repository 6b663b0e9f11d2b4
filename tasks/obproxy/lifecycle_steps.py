"""Steps of the tasks on an existing cluster's OBProxies: add, stop, start, restart, upgrade
(the offline's are in ``uninstall_steps`` and ``offline_steps``). They reuse the install
chain's steps where the work is the same.

Only steps OCP documents show a Java ``className``; ours show their Python path.

A server row's status follows the process: STOPPED when a step stopped it, RUNNING when a
chain ends with it answering, DELETING from the offline's first step until its row is removed,
and UNAVAILABLE when a step failed on it. What OCP shows is worked out from it and the running
task (``activity``): RESTARTING or UPGRADING while a restart or upgrade works on it, and a
stopped OBProxy as UNAVAILABLE.
"""

from __future__ import annotations

from sqlmodel import Session, select

from engine import Step, StepContext

from .cluster_steps import PrepareObproxyInstall, record_servers
from .install_steps import InstallRpmByPackageAndVersion, StartObproxy, found_running, metrics_url
from .obproxy_host import HostStep, proxysys, q
from .payloads import AddPayload, ServersPayload, UpgradePayload
from .records import ObproxyClusterRecord, ObproxyServerRecord

# The offline's steps live in ``uninstall_steps``; tasks recorded before name them here.
from .uninstall_steps import DeleteObproxyInfo as DeleteObproxyInfo
from .uninstall_steps import FinishOfflineObproxy as FinishOfflineObproxy
from .uninstall_steps import PrepareOfflineObproxy as PrepareOfflineObproxy
from .uninstall_steps import StopAndUninstallObproxy as StopAndUninstallObproxy


def _recorded(session: Session, cluster_id: int) -> ObproxyClusterRecord:
    cluster = session.get(ObproxyClusterRecord, cluster_id)
    if cluster is None:
        raise LookupError(f"OBProxy cluster {cluster_id} is no longer recorded")
    return cluster


class StartNode(Step):
    """The first node: the cluster and the OBProxies the task names are still recorded."""

    ocp_class_name = "com.alipay.ocp.service.task.business.StartNode"

    def execute(self, ctx: StepContext) -> None:
        payload = ctx.payload_as(ServersPayload)
        with ctx.session() as session:
            cluster = _recorded(session, payload.cluster_id)
            query = select(ObproxyServerRecord.id).where(
                ObproxyServerRecord.cluster_id == payload.cluster_id
            )
            missing = set(payload.server_ids) - set(session.exec(query).all())
        if missing:
            gone = ", ".join(map(str, sorted(missing)))
            raise LookupError(f"OBProxies {gone} are no longer in cluster {cluster.name!r}")
        ctx.log.info(f"OBProxy cluster {cluster.name!r} (id {cluster.id})")


class FinishNode(Step):
    """The last node of a task on a cluster's OBProxies."""

    ocp_class_name = "com.alipay.ocp.service.task.business.obproxy.FinishTask"

    def execute(self, ctx: StepContext) -> None:
        ctx.log.info("done")


class PrepareObproxyAdd(PrepareObproxyInstall):
    """Record a server row per new host (CREATING), as the create's Prepare does; its retry
    and rollback are the create's (the rollback removes the rows this task wrote)."""

    def execute(self, ctx: StepContext) -> None:
        p = ctx.payload_as(AddPayload)
        with ctx.session() as session:
            cluster = _recorded(session, p.cluster_id)
            args = (p.host_ids, p.sql_port, p.exporter_port, p.version)
            record_servers(ctx, session, p.cluster_id, *args)
        ctx.log.info(f"OBProxy cluster {cluster.name!r} gains hosts {p.host_ids}")


class StopObproxy(HostStep):
    """Stop the server's obproxy (TERM, KILL after 10 s). Its rollback starts it again only if
    this step found it running, and puts back the status it found."""

    def run(self, ctx: StepContext) -> None:
        install = self.install_dir(ctx)
        with ctx.session() as session:
            server = self.server(ctx, session)
            ctx.string_map[_status_before(ctx)] = server.status if server else "UNAVAILABLE"
        if self.pid(ctx, install) is not None:
            ctx.string_map[found_running(ctx, "stop")] = "true"
        self.stop_process(ctx, install)
        self.mark_server(ctx, "STOPPED")

    def rollback(self, ctx: StepContext) -> None:
        if ctx.string_map.get(found_running(ctx, "stop")) == "true" or (
            _status_before(ctx) not in ctx.string_map  # it failed part-way: it may have stopped it
        ):
            self.start_process(ctx, self.install_dir(ctx))
            self.mark_server(ctx, "RUNNING")
        else:
            self.mark_server(ctx, ctx.string_map[_status_before(ctx)])


def _status_before(ctx: StepContext) -> str:
    return f"obproxy_status_before_stop_{HostStep.host_id(ctx)}"


class StopObproxyServer(StopObproxy):
    """OCP 4.3's "Stop obproxy": a stop as a task of its own, which OCP's sample marks as not
    to be rolled back: a stopped OBProxy is brought back by a start, not by undoing the stop."""

    irreversible = True


class CheckObproxy(HostStep):
    """The server answers SQL (``SELECT 1`` as root@proxysys) and serves /metrics."""

    def run(self, ctx: StepContext) -> None:
        with proxysys(ctx, self) as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchall()
        ctx.log.info(f"obproxy answers SQL on port {self.spec(ctx).sql_port}")
        ctx.log.info(f"exporter answers at {metrics_url(ctx, self)}")


class MarkObproxyRunning(HostStep):
    """RUNNING once the chain brought the server back; its rollback leaves the status to the
    steps before it, which put the process back as it was."""

    ocp_class_name = "com.alipay.ocp.service.task.business.obproxy.UpdateObproxyStatusTask"

    def run(self, ctx: StepContext) -> None:
        self.mark_server(ctx, "RUNNING")


# -- rolling upgrade: each step names the package it works with -------------------------------


def _old(ctx: StepContext) -> str:
    return ctx.payload_as(UpgradePayload).from_versions[str(HostStep.host_id(ctx))]


def _new(ctx: StepContext) -> str:
    return ctx.payload_as(UpgradePayload).version


class StopOldObproxy(StopObproxy):
    def version_file(self, ctx: StepContext) -> str:
        return _old(ctx)


class InstallNewObproxy(InstallRpmByPackageAndVersion):
    """Unpack the new package beside the old install (the old stays for a rollback)."""

    def version_file(self, ctx: StepContext) -> str:
        return _new(ctx)


class StartNewObproxy(StartObproxy):
    """Start the new version on the old one's configuration (its parameters and the password
    it was given carry over), copied over whatever the new directory held from an earlier
    upgrade, which may be stale."""

    def version_file(self, ctx: StepContext) -> str:
        return _new(ctx)

    def run(self, ctx: StepContext) -> None:
        old, new = self.install_dir(ctx, _old(ctx)), self.install_dir(ctx)
        saved = "etc/obproxy_config.bin"
        if self.pid(ctx, new) is None:
            self.sh(
                ctx,
                f"if [ -f {q(old)}/{saved} ]; then "
                f"mkdir -p {q(new)}/etc && cp -p {q(old)}/{saved} {q(new)}/{saved}; fi",
            )
        super().run(ctx)


class UpdateObproxyVersion(HostStep):
    """Record the new version (RUNNING); rollback records the old one again. The new version
    runs from ocptask's install of it: one taken over leaves its own directory (kept for the
    rollback, which records it again)."""

    def run(self, ctx: StepContext) -> None:
        taken = self.spec(ctx).install_dir
        if taken:
            ctx.string_map[_taken_dir(ctx)] = taken
        self.mark_server(ctx, "RUNNING", version=_new(ctx), install_dir=None)

    def rollback(self, ctx: StepContext) -> None:
        before = ctx.string_map.get(_taken_dir(ctx))
        self.mark_server(ctx, "RUNNING", version=_old(ctx), install_dir=before)


def _taken_dir(ctx: StepContext) -> str:
    return f"obproxy_install_dir_before_upgrade_{HostStep.host_id(ctx)}"
