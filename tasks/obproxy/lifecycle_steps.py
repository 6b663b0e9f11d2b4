"""Steps of the tasks on an existing cluster's OBProxies: add, stop, start, restart, upgrade,
offline (delete). They reuse the install chain's steps where the work is the same.

Only steps OCP documents show a Java ``className``; ours show their Python path.

A server row's status follows the process: STOPPED when a step stopped it, RUNNING when a
chain ends with it answering, DELETING from the offline's first step until its row is removed,
and UNAVAILABLE when a step failed on it. What OCP shows is worked out from it and the running
task (``activity``): RESTARTING or UPGRADING while a restart or upgrade works on it, and a
stopped OBProxy as UNAVAILABLE.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from engine import Step, StepContext
from engine.states import holds

from .checks import forget_hosts
from .cluster_steps import PrepareObproxyInstall, record_servers
from .install_steps import InstallRpmByPackageAndVersion, StartObproxy, found_running, metrics_url
from .obproxy_host import HostStep, proxysys, q
from .offline_steps import exporter_key, uninstalled_key
from .payloads import AddPayload, OfflinePayload, ServersPayload, UpgradePayload
from .records import ObproxyClusterRecord, ObproxyServerRecord, hold, touch


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


# -- offline (delete) ---------------------------------------------------------------------------


def _uninstalled(ctx: StepContext) -> str:
    """The context key the uninstall of this copy's host sets: ``Delete obproxy info`` removes
    the row only after it, so a skipped uninstall leaves the row (DELETING), not a lost install."""
    return uninstalled_key(HostStep.host_id(ctx))


class PrepareOfflineObproxy(HostStep):
    """Mark the server DELETING (the status before is kept in the context for a rollback, its
    exporter's address for Offline obproxy exporter)."""

    ocp_class_name = "com.alipay.ocp.service.task.business.obproxy.PrepareOfflineObproxyTask"
    status_on_failure = None  # stays DELETING

    def run(self, ctx: StepContext) -> None:
        with ctx.session() as session:
            server = self.server(ctx, session)
            if server is None:
                raise LookupError(f"no OBProxy of this cluster on host {self.host_id(ctx)}")
            if server.status != "DELETING":
                ctx.string_map[f"obproxy_status_before_{self.host_id(ctx)}"] = server.status
            ctx.string_map[exporter_key(server.host_id)] = f"{server.ip}:{server.exporter_port}"
            before = server.status
        self.mark_server(ctx, "DELETING")
        ctx.log.info(
            f"OBProxy server {server.id} on host {server.host_id}: {before} -> DELETING "
            "(nothing is stopped before every host is prepared)"
        )

    def rollback(self, ctx: StepContext) -> None:
        before = ctx.string_map.get(f"obproxy_status_before_{self.host_id(ctx)}")
        if before:
            self.mark_server(ctx, before)


class StopAndUninstallObproxy(HostStep):
    """Stop every obproxy ocptask installed for this user (TERM, then KILL), remove those
    installs (any version: an upgrade leaves the old one) and the packages ocptask uploaded."""

    ocp_class_name = "com.alipay.ocp.service.task.business.obproxy.UninstallObproxyTask"
    status_on_failure = None  # stays DELETING
    irreversible = True  # the template prohibits rolling back past it

    def run(self, ctx: StepContext) -> None:
        if self.host_id(ctx) in ctx.payload_as(OfflinePayload).skip_host_ids:
            ctx.log.warning(
                f"host {self.host_id(ctx)}: nothing stopped or removed there, as the call asked "
                "(skipHostOperationServerIds); its obproxy, if any, is left as it is"
            )
            ctx.string_map[_uninstalled(ctx)] = "not asked"  # the record goes all the same
            return
        home = self.home(ctx)
        step = InstallRpmByPackageAndVersion
        owner = q(f"{self.cluster_id(ctx)}/{self.spec(ctx).server_id}")
        current = q(self.install_dir(ctx))
        # This server's installs: those its tasks marked as its own, and its recorded version's
        # if marked by ocptask before owners were written. Nothing another server owns.
        found = self.sh(
            ctx,
            f'for d in {q(home)}/obproxy-*; do [ -f "$d/{step.MARK}" ] || continue; '
            f'o=$(cat "$d/{step.OWNER}" 2>/dev/null || true); '
            f'if [ "$o" = {owner} ] || {{ [ -z "$o" ] && [ "$d" = {current} ]; }}; '
            'then echo "$d"; fi; done; true',
        ).stdout.splitlines()
        installs = [
            d for d in found if d.startswith(f"{home}/obproxy-") and "/" not in d[len(home) + 1 :]
        ]
        self._remove_taken_over(ctx)
        for install in installs:
            self.stop_process(ctx, install)
            self.sh(ctx, f"rm -rf {q(install)}")
            ctx.log.info(f"removed {install}")
        # The packages ocptask uploaded for those versions, unless another install still uses one.
        packages = f"{home}/.ocptask/packages"
        for install in installs:
            version = install.rsplit("/obproxy-", 1)[1]
            pattern = f"{q(packages)}/obproxy*-{q(version)}-*.rpm{step.MARK}"  # -ce too
            self.sh(
                ctx,
                f'[ -e {q(install)} ] || for m in {pattern}; do [ -f "$m" ] || continue; '
                f'rm -f "${{m%{step.MARK}}}" "$m"; echo "removed ${{m%{step.MARK}}}"; done; true',
            )
        self.sh(
            ctx,
            f"rmdir {q(packages)} {q(home)}/.ocptask/run {q(home)}/.ocptask 2>/dev/null; true",
            tagged=False,  # its own mark would keep ~/.ocptask/run
        )
        ctx.string_map[_uninstalled(ctx)] = "true"

    def _remove_taken_over(self, ctx: StepContext) -> None:
        """An OBProxy taken over runs from its own directory, installed by other means: it is
        stopped and removed as ocptask's own are (only while it still holds bin/obproxy)."""
        taken = self.spec(ctx).install_dir
        if not taken:
            return  # ocptask's own (also one taken over that an upgrade moved to ocptask's)
        self.stop_process(ctx, taken)
        gone = self.sh(
            ctx,
            f"if [ -f {q(taken)}/bin/obproxy ]; then rm -rf {q(taken)} && echo removed; fi",
        ).stdout.split()
        if gone == ["removed"]:
            ctx.log.info(f"removed {taken}, the install taken over")
        else:
            ctx.log.warning(f"{taken} holds no bin/obproxy any more: left as it is")


class DeleteObproxyInfo(HostStep):
    """Remove the server row once its host is cleared (per host: the offline's node before
    OCP's shape, kept for the tasks recorded then; now ``offline_steps.DeleteObproxyInfos``)."""

    status_on_failure = None  # stays DELETING
    irreversible = True

    def run(self, ctx: StepContext) -> None:
        with ctx.session() as session:
            server = self.server(ctx, session)
            if server is None:
                ctx.log.info("the server row is already gone")
            elif ctx.string_map.get(_uninstalled(ctx)) not in ("true", "not asked"):
                ctx.log.warning(
                    f"the uninstall on host {self.host_id(ctx)} was skipped: OBProxy server "
                    f"{server.id} stays recorded as DELETING (delete it again to clear the host)"
                )
            else:
                session.delete(server)
                touch(session, server.cluster_id)
                forget_hosts(session.connection(), [server.host_id])
                ctx.log.info(f"removed OBProxy server {server.id} on host {server.host_id}")


class FinishOfflineObproxy(Step):
    """Last node of an offline; when the cluster itself is deleted, its row goes here."""

    ocp_class_name = "com.alipay.ocp.service.task.business.obproxy.FinishTask"

    def execute(self, ctx: StepContext) -> None:
        payload = ctx.payload_as(OfflinePayload)
        if not payload.delete_cluster:
            ctx.log.info(f"OBProxies {payload.server_ids} are offline; the cluster stays")
            return
        with ctx.session() as session:
            cluster = session.get(ObproxyClusterRecord, payload.cluster_id)
            if cluster is None:
                ctx.log.info(f"OBProxy cluster {payload.cluster_id} is already gone")
                return
            query = select(ObproxyServerRecord).where(
                ObproxyServerRecord.cluster_id == payload.cluster_id
            )
            left = list(session.exec(query.order_by(col(ObproxyServerRecord.id))).all())
            if left:
                which = ", ".join(f"{s.id} (host {s.host_id}, {s.status})" for s in left)
                raise RuntimeError(
                    f"OBProxy cluster {cluster.name!r} still has OBProxies {which}: it is kept. "
                    "Delete them again once their hosts answer, then delete the cluster"
                )
            session.delete(cluster)
            holds.forget(session.connection(), hold(payload.cluster_id)[0])
        ctx.log.info(f"deleted OBProxy cluster {cluster.name!r} (id {cluster.id})")
