"""The per-host install chain (OCP's batchAdd DAG, ocp-task-api.md §5), one copy per host.

The create and the add of OBProxies run it alike: each step reads the cluster's recorded
settings and its host's server row (``obproxy_host.HostStep.spec``). Each step's rollback undoes
exactly what its execute did and is safe to run twice. The install removes and reinstalls only
what this task put there; start stops the obproxy this install runs and starts it again; the
parameter step keeps the values it first replaced, on the host, so its rollback still puts the
originals back.
"""

from __future__ import annotations

import http.client
import json

import pymysql

from engine import StepContext
from tasks.hosts.steps import check_commands, reach
from tasks.obclusters.registry import proxy_password

from .obproxy_host import HostStep, proxysys, q, show
from .packages import package_path, package_version
from .records import ObproxyClusterRecord
from .secret_parameters import is_secret, opened, restorable, shown_value

PROCESS_KEYWORDS = ("bin/obproxy", "obproxyd.sh")
COMMANDS_TO_CHECK = ("rpm2cpio", "cpio", "python3")


class CheckProcessNotExist(HostStep):
    """No obproxy of this login user runs on the host (OCP: keywords obproxy, obproxyd.sh)."""

    ocp_class_name = "com.alipay.ocp.service.task.business.host.CheckProcessNotExistTask"
    plan = "reads: connects over SSH (pinning the host key), no obproxy of the login user runs"

    def run(self, ctx: StepContext) -> None:
        # The chain's first SSH contact: record the host's status, pin a key accepted on first use.
        reach(ctx, self.host_id(ctx), self.ssh(ctx))
        # "[b]in/obproxy": the bracket keeps pgrep from finding its own command line.
        patterns = [f"[{k[0]}]{k[1:]}" for k in PROCESS_KEYWORDS]
        script = "; ".join(f'pgrep -u "$(id -u)" -a -f {q(p)}' for p in patterns) + "; true"
        found = self.sh(ctx, script).stdout.strip()
        if found:
            raise RuntimeError(f"obproxy processes already run on the host: {found}")


class CheckCommandExists(HostStep):
    ocp_class_name = "com.alipay.ocp.service.task.business.host.CheckCommandTask"
    plan = "reads: rpm2cpio, cpio and python3 are there"

    def run(self, ctx: StepContext) -> None:
        check_commands(lambda script: self.sh(ctx, script), COMMANDS_TO_CHECK)


class InstallRpmByPackageAndVersion(HostStep):
    """Upload the package (skipped when the host has it already) and unpack it, no rpm db."""

    ocp_class_name = "com.alipay.ocp.service.task.business.host.InstallRpmByPackageAndVersionTask"
    plan = "uploads the package to ~/.ocptask/packages (unless there), unpacks it in ~/obproxy-VER"

    MARK = ".ocptask-installed"  # holds the id of the task that installed it
    OWNER = ".ocptask-server"  # holds "<cluster id>/<server id>": whose install it is

    def owner(self, ctx: StepContext) -> str:
        spec = self.spec(ctx)
        return f"{spec.cluster_id}/{spec.server_id}"

    def run(self, ctx: StepContext) -> None:
        version_file = self.version_file(ctx)
        local = package_path(version_file)
        home = self.home(ctx)
        remote_pkg = f"{home}/.ocptask/packages/{local.name}"
        uploaded = self.ssh(ctx).put(local, remote_pkg)
        ctx.log.info(f"package {local.name}: {'uploaded' if uploaded else 'already on the host'}")
        # So that rollback removes the package only if this task brought it.
        brought = f"echo {q(str(ctx.task_id))} > {q(remote_pkg + self.MARK)}; " if uploaded else ""
        target = self.install_dir(ctx)
        inner = f"home/admin/obproxy-{package_version(version_file)}"
        self.sh(
            ctx,
            # MARK first (a cut copy is still known as ours: its rollback removes it, a rerun
            # completes it), OWNER last (only a complete copy counts as installed).
            f"set -e; {brought}"
            f"if [ -x {q(target)}/bin/obproxy ] && [ -f {q(target)}/{self.OWNER} ]; "
            "then echo 'already installed'; exit 0; fi; "
            f"if [ -e {q(target)} ] && [ ! -f {q(target)}/{self.MARK} ]; then "
            f"echo {q(target)}' exists and was not installed by ocptask: not touched' >&2; "
            "exit 1; fi; "
            f"mkdir -p {q(target)}; [ -f {q(target)}/{self.MARK} ] || "
            f"echo {q(str(ctx.task_id))} > {q(target)}/{self.MARK}; "
            f'tmp=$(mktemp -d); cd "$tmp"; rpm2cpio {q(remote_pkg)} | cpio -idm --quiet; '
            f"cp -a {q(inner)}/. {q(target)}/; "
            f"echo {q(self.owner(ctx))} > {q(target)}/{self.OWNER}; "
            'rm -rf "$tmp"',
            timeout=600,
        )
        # OCP shows the host's hardware architecture beside each OBProxy: what the host told
        # when the chain first reached it (its facts, recorded by ``reach``).
        architecture = ctx.hosts.get(self.host_id(ctx)).architecture
        self.record_server(ctx, architecture=architecture)

    def rollback(self, ctx: StepContext) -> None:
        target = self.install_dir(ctx)
        version_file = self.version_file(ctx)
        remote_pkg = f"{self.home(ctx)}/.ocptask/packages/{package_path(version_file).name}"
        mine = q(str(ctx.task_id))
        self.sh(
            ctx,
            f'if [ -f {q(target)}/{self.MARK} ] && [ "$(cat {q(target)}/{self.MARK})" = {mine} ]; '
            f"then rm -rf {q(target)}; fi; "
            f'if [ "$(cat {q(remote_pkg + self.MARK)} 2>/dev/null)" = {mine} ]; '
            f"then rm -f {q(remote_pkg)} {q(remote_pkg + self.MARK)}; fi",
        )


class StartObproxy(HostStep):
    """Start obproxy with the parameters that go at start (``delivery``: never a password);
    done when the started pid owns the port.

    Its rollback stops only what it started: an obproxy that already ran (a start of a server
    that was running) is left running."""

    ocp_class_name = "com.alipay.ocp.service.task.business.obproxy.StartObproxyTask"
    plan = "starts obproxy on the SQL and exporter ports with the parameters that go at start"

    def run(self, ctx: StepContext) -> None:
        if self.start_process(ctx, self.install_dir(ctx)):
            ctx.string_map[found_running(ctx, "start")] = "true"

    def rollback(self, ctx: StepContext) -> None:
        if ctx.string_map.get(found_running(ctx, "start")) == "true":
            ctx.log.info("obproxy ran before this step: left running")
            return
        self.stop_process(ctx, self.install_dir(ctx))
        self.mark_server(ctx, "STOPPED")


def found_running(ctx: StepContext, step: str) -> str:
    """The context key by which a start or stop step tells its rollback that obproxy was
    already running when it came (saved with the step's success; per host, so the contexts of
    several hosts merge without clashing)."""
    return f"obproxy_{step}_found_running_{HostStep.host_id(ctx)}"


class SyncObproxyParameter(HostStep):
    """Set the parameters that go live by ALTER PROXYCONFIG SET, values bound, not spliced; the
    log says of every parameter which way it went and why (``delivery``: one needing a restart
    went at start, in ``-o``). A secret is opened here only, masked in the log, and its value
    before is kept for the rollback only when it was unset: obproxy shows a password as its
    hash, which ALTER would take for a new password and hash again."""

    ocp_class_name = "com.alipay.ocp.service.task.business.obproxy.SyncObproxyParameterTask"
    plan = (
        "sets the live parameters by ALTER PROXYCONFIG, passwords included (the values before "
        "are kept for a rollback); says which went at start"
    )

    def run(self, ctx: StepContext) -> None:
        ways = self.spec(ctx).deliveries()
        version, before = self._versions(ctx)
        for way in ways:
            if way.at_start:
                ctx.log.info(f"{way.name} = {way.value!r}: {way.way}, {way.why}")
        live = {w.name: w for w in ways if not w.at_start}
        values = {name: opened(name, w.value, ctx.open_secret) for name, w in live.items()}
        for name, value in values.items():
            if is_secret(name):
                ctx.log.add_secret(value)
        with proxysys(ctx, self) as cursor:
            shown = {name: show(cursor, name) for name in live}
            previous = {name: restorable(name, value) for name, value in shown.items()}
            # Kept on the host beside the install, for rollback; written before anything changes.
            saved = q(self.saved_file(ctx))
            self.sh(ctx, f"[ -f {saved} ] || printf '%s' {q(json.dumps(previous))} > {saved}")
            for name, way in live.items():
                cursor.execute(f"ALTER PROXYCONFIG SET {name} = %s", (values[name],))
                was = shown_value(name, shown[name])
                ctx.log.info(
                    f"{name} = {shown_value(name, values[name])!r}: {way.way}, {way.why} "
                    f"(was {was!r})"
                )
        # The OBProxy now runs the cluster's parameters of this version (its parameterVersion).
        ctx.string_map.setdefault(self._version_key(ctx), str(before))
        self.record_server(ctx, parameter_version=version)

    def _version_key(self, ctx: StepContext) -> str:
        return f"obproxy_parameter_version_before_{HostStep.host_id(ctx)}"

    def _versions(self, ctx: StepContext) -> tuple[int, int]:
        """The cluster's parameter version, and the one this host's OBProxy applied last."""
        with ctx.reading() as session:
            cluster = session.get(ObproxyClusterRecord, self.cluster_id(ctx))
            server = self.server(ctx, session)
            return (
                (cluster.parameter_version if cluster else None) or 0,
                (server.parameter_version if server else None) or 0,
            )

    def saved_file(self, ctx: StepContext) -> str:
        return f"{self.install_dir(ctx)}/etc/ocptask-parameters-before-task-{ctx.task_id}.json"

    def rollback(self, ctx: StepContext) -> None:
        """Put back the values this step replaced, if obproxy still runs to take them."""
        saved = self.saved_file(ctx)
        result = self.sh(ctx, f"cat {q(saved)}", check=False)
        if result.exit_code != 0:
            return  # never ran far enough to change anything
        previous = json.loads(result.stdout or "{}")
        try:
            with proxysys(ctx, self) as cursor:
                for name, value in previous.items():
                    if value is not None:
                        cursor.execute(f"ALTER PROXYCONFIG SET {name} = %s", (value,))
                        ctx.log.info(f"restored {name} = {value!r}")
                    elif is_secret(name):
                        ctx.log.info(f"{name} not restored: obproxy shows only its hash")
        except pymysql.err.OperationalError as exc:
            ctx.log.info(f"obproxy is not running ({exc.args[-1]}): nothing to restore")
        self.sh(ctx, f"rm -f {q(saved)}")
        before = ctx.string_map.get(self._version_key(ctx))
        if before is not None:
            self.record_server(ctx, parameter_version=int(before))


class SetObproxyUserPassword(HostStep):
    """Give obproxy the obLink user's password (the registered OceanBase cluster's)."""

    ocp_class_name = "com.alipay.ocp.service.task.business.obproxy.SetObproxyUserPasswordForObTask"
    plan = "gives obproxy the proxyro password of the linked OceanBase cluster"

    def run(self, ctx: StepContext) -> None:
        links = self.spec(ctx).ob_links
        if not links:
            ctx.log.info("no obLink: nothing to connect to yet")
            return
        link = links[0]
        password = proxy_password(ctx, link["obClusterId"])
        if password is None:
            raise LookupError(
                f"OceanBase cluster {link['obClusterId']} ({link['clusterName']}) is no longer "
                "registered; register it again with 'ocptask obcluster add'"
            )
        if password:
            ctx.log.add_secret(password)
        else:
            ctx.log.info(
                f"OceanBase cluster {link['obClusterId']} was registered without a proxyro "
                "password (by its observers): obproxy logs in with none until "
                "'ocptask obcluster add' gives one"
            )
        with proxysys(ctx, self) as cursor:
            cursor.execute("ALTER PROXYCONFIG SET observer_sys_password = %s", (password,))
        ctx.log.info(f"obproxy connects to {link['clusterName']} as {link['username']}")

    def rollback(self, ctx: StepContext) -> None:
        """Take the password back out (obproxy never shows the old one, so it was unset)."""
        try:
            with proxysys(ctx, self) as cursor:
                cursor.execute("ALTER PROXYCONFIG SET observer_sys_password = %s", ("",))
        except pymysql.err.OperationalError as exc:
            ctx.log.info(f"obproxy is not running ({exc.args[-1]}): nothing to take back")


class RegisterObproxyExporter(HostStep):
    ocp_class_name = "com.alipay.ocp.service.task.business.obproxy.RegisterObproxyExporterTask"
    plan = "reads /metrics and records the exporter URL"

    def run(self, ctx: StepContext) -> None:
        url = metrics_url(ctx, self)
        self.mark_server(ctx, "CREATING", exporter_url=url)
        ctx.log.info(f"exporter answers at {url}")

    def rollback(self, ctx: StepContext) -> None:
        self.mark_server(ctx, "CREATING", exporter_url=None)


class UpdateObproxyStatus(HostStep):
    ocp_class_name = "com.alipay.ocp.service.task.business.obproxy.UpdateObproxyStatusTask"
    plan = "marks the server RUNNING"

    def run(self, ctx: StepContext) -> None:
        self.mark_server(ctx, "RUNNING")

    def rollback(self, ctx: StepContext) -> None:
        self.mark_server(ctx, "CREATING")


def metrics_url(ctx: StepContext, step: HostStep) -> str:
    """The exporter's URL, once it answered 200."""
    address, port = step.target(ctx).address, step.spec(ctx).exporter_port
    url = f"http://{address}:{port}/metrics"
    # http.client, not urllib: urlopen builds a TLS context (loading every CA) on each call.
    conn = http.client.HTTPConnection(address, port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException) as exc:  # the error names the URL
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise RuntimeError(f"{url} does not answer: {reason}") from None
    finally:
        conn.close()
    if status != 200:
        raise RuntimeError(f"{url} answered {status}")
    return url
