"""The steps of a take-over (OCP's ``POST …/clusters/{id}/takeOver``): OCP's 12 "Install obproxy"
nodes, each doing what a take-over of an obproxy installed by other means needs, and saying in
its log what it did, or that there was nothing to do and why.

The server row is written at submit (TAKINGOVER); "Prepare create obproxy" (``takeover_prepare``)
records where the obproxy runs from and how it was started, so that restart, stop, start,
upgrade and delete then work on it as on an OBProxy ocptask installed. Nothing is installed,
started or set on the host. A rollback only forgets the row (its first node's): the adopted
obproxy is never stopped.
"""

from __future__ import annotations

from engine import Step, StepContext
from tasks.hosts.steps import check_commands, missing_commands

from .adopted import NEEDED, own_parameters
from .cluster_steps import forget_servers
from .install_steps import metrics_url
from .obproxy_host import proxysys, show
from .records import ObproxyClusterRecord, ObproxyServerRecord
from .secret_parameters import is_secret
from .takeover_prepare import TakeOverStep

_BUSINESS = "com.alipay.ocp.service.task.business"
UPGRADE_COMMANDS = ("rpm2cpio", "cpio")  # what a later upgrade unpacks its package with


class PrepareTakeOver(Step):
    """The first node: the cluster and the server row written at submit are still recorded.
    Its rollback, the take-over's only one, forgets that row (and the host's hold)."""

    ocp_class_name = f"{_BUSINESS}.obproxy.PrepareObproxyInstallTask"
    plan = "checks the cluster and the OBProxy server row written at submit are recorded"

    def execute(self, ctx: StepContext) -> None:
        cluster_id, host_id = ctx.string_map["obproxy_cluster_id"], ctx.string_map["host_id"]
        server_id = int(ctx.string_map.get("obproxy_server_id") or 0)
        with ctx.reading() as session:
            cluster = session.get(ObproxyClusterRecord, int(cluster_id))
            server = session.get(ObproxyServerRecord, server_id) if server_id else None
        if cluster is None:
            raise LookupError(f"OBProxy cluster {cluster_id} is no longer recorded")
        if server is None or server.task_id != ctx.task_id:
            raise LookupError(f"OBProxy server {server_id}, recorded at submit, is gone")
        ctx.log.info(
            f"OBProxy cluster {cluster.name!r} (id {cluster.id}) takes over the obproxy on host "
            f"{host_id}, SQL port {server.sql_port}, as OBProxy server {server.id} (recorded "
            "at submit)"
        )

    def retry(self, ctx: StepContext) -> None:
        self.execute(ctx)  # its rollback would forget the row the submit wrote

    def rollback(self, ctx: StepContext) -> None:
        with ctx.session() as session:
            gone = forget_servers(ctx, session)
        for server in gone:
            ctx.log.info(
                f"forgot OBProxy server {server.id} on host {server.host_id}: its obproxy, if "
                "any, is left running as it was (a take-over's rollback never stops it)"
            )


class CheckTakenProcess(TakeOverStep):
    """In a take-over, the opposite of an install's check: the obproxy is there, runs from the
    recorded directory and still listens on the SQL port."""

    ocp_class_name = f"{_BUSINESS}.host.CheckProcessNotExistTask"
    plan = "reads: the obproxy taken over still runs and listens"

    def run(self, ctx: StepContext) -> None:
        install, port, host = self.taken_dir(ctx), self.spec(ctx).sql_port, self.host_id(ctx)
        pid = self.pid(ctx, install)
        if pid is None:
            raise RuntimeError(f"host {host}: no obproxy runs from {install} any more")
        holders = [p.pid for p in self.listeners(ctx)]
        if pid not in holders:
            raise RuntimeError(
                f"host {host}: obproxy pid {pid} runs from {install}, but port {port} is held by "
                f"pid {', '.join(map(str, holders))}"
            )
        keywords = ctx.list_map.get("process_keywords", [])
        ctx.log.info(
            f"a take-over's check is the opposite of an install's: obproxy pid {pid} is there "
            f"(keywords {', '.join(keywords)}), runs from {install} and listens on port {port}"
        )


class CheckTakeOverCommands(TakeOverStep):
    """The commands the take-over and the OBProxy's restarts run on the host; those an upgrade
    would need are only reported."""

    ocp_class_name = f"{_BUSINESS}.host.CheckCommandTask"
    plan = "reads: awk, base64, readlink and grep are there"

    def run(self, ctx: StepContext) -> None:
        needed = ctx.list_map.get("commands_to_check") or list(NEEDED)
        check_commands(lambda script: self.sh(ctx, script), needed)
        ctx.log.info(f"{', '.join(needed)}: there")
        later = missing_commands(lambda script: self.sh(ctx, script), UPGRADE_COMMANDS)
        if later:
            ctx.log.warning(
                f"{', '.join(later)} missing: an upgrade of this OBProxy, which unpacks a "
                "package, will need them"
            )
        else:
            ctx.log.info(f"{', '.join(UPGRADE_COMMANDS)} (for a later upgrade): there")


class InstallNothing(TakeOverStep):
    ocp_class_name = f"{_BUSINESS}.host.InstallRpmByPackageAndVersionTask"
    plan = "nothing: the obproxy taken over is installed already"

    def run(self, ctx: StepContext) -> None:
        spec = self.spec(ctx)
        ctx.log.info(
            f"nothing installed: obproxy {spec.version_file} was installed by other means at "
            f"{self.taken_dir(ctx)} and is taken over as it is"
        )


class StartNothing(TakeOverStep):
    ocp_class_name = f"{_BUSINESS}.obproxy.StartObproxyTask"
    plan = "nothing: the obproxy taken over runs already"

    def run(self, ctx: StepContext) -> None:
        install = self.taken_dir(ctx)
        pid = self.pid(ctx, install)
        if pid is None:
            raise RuntimeError(
                f"host {self.host_id(ctx)}: no obproxy runs from {install}: a take-over starts "
                "none; start it as before and retry"
            )
        ctx.log.info(f"obproxy already runs as pid {pid}: not started")


class ReadTakenParameters(TakeOverStep):
    """Read its parameters (``SHOW PROXYCONFIG``), say those that are not obproxy's defaults,
    and compare the cluster's recorded parameters with them. Nothing is set: its
    ``parameterVersion`` is the cluster's when the cluster's parameters already hold there,
    else 0, and its next restart applies them (as for every OBProxy of the cluster): those that
    go at start in its ``-o``, merged into its own (``ServerSpec.start_args``), the others live."""

    ocp_class_name = f"{_BUSINESS}.obproxy.SyncObproxyParameterTask"
    plan = "reads its parameters and compares the cluster's with them; sets nothing"

    def run(self, ctx: StepContext) -> None:
        with proxysys(ctx, self) as cursor:
            cursor.execute("SHOW PROXYCONFIG")
            rows = [(str(r[0]), "" if r[1] is None else str(r[1])) for r in cursor.fetchall()]
        spec = self.spec(ctx)
        own, unknown = own_parameters(rows, spec.version_file)
        shown = ", ".join(f"{p['name']}={p['value']!r}" for p in own) or "none"
        ctx.log.info(f"read {len(rows)} parameters; not obproxy's defaults: {shown}")
        if unknown:
            ctx.log.info(
                f"{len(unknown)} not in obproxy's parameter metadata, not compared: "
                f"{', '.join(unknown[:20])}{' …' if len(unknown) > 20 else ''}"
            )
        with ctx.reading() as session:
            cluster = session.get(ObproxyClusterRecord, self.cluster_id(ctx))
        # The cluster's startup parameters and parameters alike (a secret is never shown).
        wanted = [d for d in spec.deliveries() if not is_secret(d.name)]
        here = dict(rows)
        differ = [d for d in wanted if here.get(d.name) != d.value]
        version = (cluster.parameter_version if cluster else None) or 0
        for d in differ:
            now = repr(here[d.name]) if d.name in here else "not shown"
            ctx.log.warning(
                f"{d.name} is {now} here, {d.value!r} in the cluster: left as it is (a "
                f"take-over sets nothing); a restart of this OBProxy applies the cluster's, "
                f"{d.way}"
            )
        if not wanted:
            ctx.log.info("the cluster records no parameters to compare")
        elif not differ:
            ctx.log.info(f"the cluster's {len(wanted)} parameters already hold here")
        applied = 0 if differ else version
        self.record_server(ctx, parameter_version=applied)
        ctx.log.info(f"nothing set; its parameterVersion is {applied}")


class KeepOwnConnection(TakeOverStep):
    ocp_class_name = f"{_BUSINESS}.obproxy.SetObproxyUserPasswordForObTask"
    plan = "nothing: the obproxy taken over keeps its own user and password"

    def run(self, ctx: StepContext) -> None:
        with proxysys(ctx, self) as cursor:
            given = show(cursor, "observer_sys_password")
        state = "set" if given else "not set"
        ctx.log.info(
            f"nothing set: the OBProxy keeps its own user and password for connecting "
            f"(observer_sys_password is {state} there, and stays so)"
        )


class RegisterTakenExporter(TakeOverStep):
    ocp_class_name = f"{_BUSINESS}.obproxy.RegisterObproxyExporterTask"
    plan = "reads /metrics and records the exporter URL"

    def run(self, ctx: StepContext) -> None:
        url = metrics_url(ctx, self)
        self.record_server(ctx, exporter_url=url)
        ctx.log.info(f"exporter answers at {url}")


class MarkTakenRunning(TakeOverStep):
    ocp_class_name = f"{_BUSINESS}.obproxy.UpdateObproxyStatusTask"
    plan = "marks the server RUNNING"

    def run(self, ctx: StepContext) -> None:
        self.mark_server(ctx, "RUNNING")
        ctx.log.info(f"OBProxy server {self.spec(ctx).server_id}: RUNNING")


class FinishTakeOver(Step):
    ocp_class_name = f"{_BUSINESS}.obproxy.FinishTask"
    plan = "confirms the take-over"

    def execute(self, ctx: StepContext) -> None:
        ctx.log.info(
            f"OBProxy server {ctx.string_map.get('obproxy_server_id')} on host "
            f"{ctx.string_map.get('host_id')} is taken over"
        )
