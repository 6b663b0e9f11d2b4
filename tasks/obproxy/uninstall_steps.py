"""The per-host steps of OCP's "Offline obproxy" (delete OBProxies, or their cluster) and its
Finish node; the shared nodes between them are in ``offline_steps``. Tasks recorded before
these moved here name them at ``tasks.obproxy.lifecycle_steps``, which still exports them.
"""

from __future__ import annotations

from sqlmodel import col, select

from engine import Step, StepContext
from engine.states import holds

from .adopted import unsafe_install_dir
from .checks import forget_hosts
from .install_steps import InstallRpmByPackageAndVersion
from .obproxy_host import HostStep, q
from .offline_steps import exporter_key, uninstalled_key
from .payloads import OfflinePayload
from .records import ObproxyClusterRecord, ObproxyServerRecord, hold, touch


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
        stopped and removed as ocptask's own are (only while it still holds bin/obproxy, and
        never the root, the login's home or a folder holding it, whatever was recorded)."""
        taken = self.spec(ctx).install_dir
        if not taken:
            return  # ocptask's own (also one taken over that an upgrade moved to ocptask's)
        self.stop_process(ctx, taken)
        why = unsafe_install_dir(taken, self.homes(ctx))
        if why:
            ctx.log.warning(f"{taken} not removed: {why}; only an obproxy's own folder goes")
            return
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

    ocp_class_name = "com.alipay.ocp.service.task.business.obproxy.DeleteObproxyMetaInfoTask"

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
