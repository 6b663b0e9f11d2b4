"""The per-host install chain (OCP's batchAdd DAG, ocp-task-api.md §5), one copy per host.

Every step finds its host through ``ctx.item("host_ids")`` and reaches it over the shared SSH
pool. Every value that reaches a remote shell goes through ``shlex.quote``. Each step's rollback
undoes exactly what its execute did and is safe to run twice; a failing step marks its OBProxy
server UNAVAILABLE.
"""

from __future__ import annotations

import json
import os
import shlex
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import pymysql
from sqlmodel import select

from engine import Step, StepContext
from engine.errors import ConnectionLost
from engine.ssh import SshConnection, SshTarget, stop_script
from tasks.hosts.steps import check_commands, reach, require_commands

from .packages import package_path, package_version
from .records import ObproxyServerRecord
from .request import CreateObproxyClusterRequest, InstallPayload

PROCESS_KEYWORDS = ("bin/obproxy", "obproxyd.sh")
COMMANDS_TO_CHECK = ("rpm2cpio", "cpio", "python3")
require_commands(*COMMANDS_TO_CHECK)
q = shlex.quote


class HostStep(Step):
    """Base of the chain's steps: host lookup, SSH, log streaming, server status on failure.

    Every step of the chain may be run again after a lost run: ``clean`` kills what the lost
    run's commands still run on the host (found by the subtask's tag), then the usual retry
    undoes and redoes the step (checks only read; the install removes and reinstalls only what
    this task put there; start stops the obproxy this install runs and starts it again; the
    parameter step keeps the values it first replaced, on the host, so its rollback still puts
    the originals back).
    """

    idempotent = True

    def execute(self, ctx: StepContext) -> None:
        try:
            try:
                self.run(ctx)
            except ConnectionLost as exc:
                # The pooled connection died under the step. Steps of the chain may be run again
                # (see above): stop what the cut run left, undo it, and run it once more on a new
                # connection; a second loss fails the step.
                ctx.log.warning(f"{exc}; running the step again on a new connection")
                self.clean(ctx)
                self.rollback(ctx)
                self.run(ctx)
        except Exception:
            self.mark_server(ctx, "UNAVAILABLE")
            raise

    def __init__(self) -> None:
        # One step instance serves one execution: what it looks up once stays valid throughout.
        self._home: str | None = None

    def run(self, ctx: StepContext) -> None:
        raise NotImplementedError

    def clean(self, ctx: StepContext) -> None:
        killed = self.ssh(ctx).kill_tagged(self.tag(ctx))
        if killed:
            groups = ", ".join(map(str, killed))
            ctx.log.warning(f"killed process groups {groups} left by the lost run")

    @staticmethod
    def tag(ctx: StepContext) -> str:
        """This subtask's mark on the host: the task's random mark keeps two databases apart."""
        mark = ctx.payload_as(InstallPayload).mark
        return f"{mark}-{ctx.subtask_id}" if mark else f"subtask-{ctx.subtask_id}"

    def request(self, ctx: StepContext) -> CreateObproxyClusterRequest:
        return ctx.payload_as(InstallPayload).request

    @staticmethod
    def host_id(ctx: StepContext) -> int:
        return int(ctx.item("host_ids"))

    def ssh(self, ctx: StepContext) -> SshConnection:
        return ctx.ssh(self.host_id(ctx))

    def target(self, ctx: StepContext) -> SshTarget:
        """The host's address and login (read once per execution)."""
        return self.ssh(ctx).target

    def reach(self, ctx: StepContext) -> None:
        """Connect; record the host's status, and pin a key accepted on first use."""
        reach(ctx, self.host_id(ctx), self.ssh(ctx))

    def sh(
        self, ctx: StepContext, command: str, *, timeout: float | None = None, check: bool = True
    ) -> Any:
        """Run on this copy's host; output lines go to the subtask log as they arrive."""
        conn = self.ssh(ctx)
        ctx.log.info(f"[{conn.target.label}] $ {command}")
        return conn.run(
            command,
            timeout=timeout,
            check=check,
            stop=ctx.stop_requested,
            on_output=lambda stream, text: ctx.log.info(f"[{stream}] {text}"),
            tag=self.tag(ctx),
        )

    def home(self, ctx: StepContext) -> str:
        if self._home is None:
            self._home = self.sh(ctx, 'printf "%s" "$HOME"').stdout
        return self._home

    def install_dir(self, ctx: StepContext) -> str:
        version = package_version(self.request(ctx).obproxyInstallParam.version)  # type: ignore[union-attr]
        return f"{self.home(ctx)}/obproxy-{version}"

    @staticmethod
    def server(ctx: StepContext, session: Any) -> ObproxyServerRecord | None:
        query = select(ObproxyServerRecord).where(
            ObproxyServerRecord.task_id == ctx.task_id,
            ObproxyServerRecord.host_id == int(ctx.item("host_ids")),
        )
        return session.exec(query).first()

    def mark_server(self, ctx: StepContext, status: str, **values: Any) -> None:
        with ctx.session() as session:
            server = self.server(ctx, session)
            if server is not None:
                server.status = status
                for key, value in values.items():
                    setattr(server, key, value)
                session.add(server)


class CheckProcessNotExist(HostStep):
    """No obproxy of this login user runs on the host (OCP: keywords obproxy, obproxyd.sh)."""

    ocp_class_name = "com.alipay.ocp.service.task.business.host.CheckProcessNotExistTask"

    def run(self, ctx: StepContext) -> None:
        self.reach(ctx)  # the chain's first SSH contact
        # "[b]in/obproxy": the bracket keeps pgrep from finding its own command line.
        patterns = [f"[{k[0]}]{k[1:]}" for k in PROCESS_KEYWORDS]
        script = "; ".join(f'pgrep -u "$(id -u)" -a -f {q(p)}' for p in patterns) + "; true"
        found = self.sh(ctx, script).stdout.strip()
        if found:
            raise RuntimeError(f"obproxy processes already run on the host: {found}")


class CheckCommandExists(HostStep):
    ocp_class_name = "com.alipay.ocp.service.task.business.host.CheckCommandTask"

    def run(self, ctx: StepContext) -> None:
        check_commands(lambda script: self.sh(ctx, script), COMMANDS_TO_CHECK)


class InstallRpmByPackageAndVersion(HostStep):
    """Upload the package (skipped when the host has it already) and unpack it, no rpm db."""

    ocp_class_name = "com.alipay.ocp.service.task.business.host.InstallRpmByPackageAndVersionTask"

    MARK = ".ocptask-installed"

    def run(self, ctx: StepContext) -> None:
        version_file = self.request(ctx).obproxyInstallParam.version  # type: ignore[union-attr]
        local = package_path(version_file)
        home = self.home(ctx)
        remote_pkg = f"{home}/.ocptask/packages/{local.name}"
        uploaded = self.ssh(ctx).put(local, remote_pkg)
        ctx.log.info(f"package {local.name}: {'uploaded' if uploaded else 'already on the host'}")
        if uploaded:  # so that rollback removes the package only if this task brought it
            self.sh(ctx, f"echo {q(str(ctx.task_id))} > {q(remote_pkg + self.MARK)}")
        target = self.install_dir(ctx)
        inner = f"home/admin/obproxy-{package_version(version_file)}"
        self.sh(
            ctx,
            f"set -e; if [ -x {q(target)}/bin/obproxy ] && [ -f {q(target)}/{self.MARK} ]; then "
            f"echo 'already installed'; exit 0; fi; "
            f'tmp=$(mktemp -d); cd "$tmp"; rpm2cpio {q(remote_pkg)} | cpio -idm --quiet; '
            f"mkdir -p {q(target)}; cp -a {q(inner)}/. {q(target)}/; "
            f'echo {q(str(ctx.task_id))} > {q(target)}/{self.MARK}; rm -rf "$tmp"',
            timeout=600,
        )

    def rollback(self, ctx: StepContext) -> None:
        target = self.install_dir(ctx)
        version_file = self.request(ctx).obproxyInstallParam.version  # type: ignore[union-attr]
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
    """Start obproxy with the startup parameters; done when the started pid owns the port."""

    ocp_class_name = "com.alipay.ocp.service.task.business.obproxy.StartObproxyTask"

    def run(self, ctx: StepContext) -> None:
        request = self.request(ctx)
        install = request.obproxyInstallParam
        assert install is not None and install.sqlPort and install.exportPort
        target = self.install_dir(ctx)
        args = [
            "./bin/obproxy",
            "--listen_port",
            str(install.sqlPort),
            "--prometheus_listen_port",
            str(install.exportPort),
        ]
        options = [f"{p.name}={p.value}" for p in request.startupParameters]
        if request.workMode == "RS_LIST":
            link = request.obLinks[0]
            args += ["--rs_list", link.rsList or "", "--cluster_name", link.clusterName]
        else:
            options.append(f"obproxy_config_server_url={config_url(request.name)}")
        if options:
            args += ["-o", ",".join(options)]
        if self.pid(ctx, target):
            ctx.log.info("obproxy already runs from this install: not started again")
        else:
            self.sh(ctx, f"cd {q(target)} && {' '.join(q(a) for a in args)}", timeout=None)
        deadline = time.monotonic() + 30
        while not self.owns_port(ctx, target, install.sqlPort):
            if time.monotonic() > deadline:
                raise RuntimeError(f"obproxy did not listen on port {install.sqlPort} within 30 s")
            ctx.sleep(0.2)
        ctx.log.info(f"obproxy pid {self.pid(ctx, target)} listens on port {install.sqlPort}")

    def pid(self, ctx: StepContext, target: str) -> int | None:
        out = self.sh(
            ctx,
            f"p=$(cat {q(target)}/run/obproxy.pid 2>/dev/null) && "
            'kill -0 "$p" 2>/dev/null && echo "$p"',
            check=False,
        ).stdout.strip()
        return int(out) if out.isdigit() else None

    def owns_port(self, ctx: StepContext, target: str, port: int) -> bool:
        """The pid in run/obproxy.pid lives and holds the listening socket (no pid-reuse trap)."""
        script = (
            f'p=$(cat {q(target)}/run/obproxy.pid 2>/dev/null) && kill -0 "$p" 2>/dev/null '
            f"|| exit 1; for i in $(awk '$4==\"0A\" && $2 ~ /:{port:04X}$/ {{print $10}}' "
            "/proc/net/tcp /proc/net/tcp6 2>/dev/null); do "
            'ls -l /proc/$p/fd 2>/dev/null | grep -q "socket:\\[$i\\]" && exit 0; done; exit 1'
        )
        return self.sh(ctx, script, check=False).exit_code == 0

    def rollback(self, ctx: StepContext) -> None:
        target = self.install_dir(ctx)
        pid = self.pid(ctx, target)
        if pid is not None:
            self.sh(ctx, stop_script(str(pid), tries=50, pause=0.1))
        self.sh(ctx, f"rm -f {q(target)}/run/obproxy.pid")


@contextmanager
def proxysys(ctx: StepContext, step: HostStep) -> Iterator[Any]:
    """A PyMySQL cursor on this host's obproxy as root@proxysys."""
    request = step.request(ctx)
    target = step.target(ctx)
    password = ""  # root@proxysys: obproxy's default; passwords never come in requests
    conn = pymysql.connect(
        host=target.address,
        port=request.obproxyInstallParam.sqlPort,  # type: ignore[union-attr]
        user="root@proxysys",
        password=password,
        connect_timeout=10,
        read_timeout=30,
        write_timeout=30,
    )
    try:
        with conn.cursor() as cursor:
            yield cursor
    finally:
        conn.close()


class SyncObproxyParameter(HostStep):
    """Apply the non-startup parameters by ALTER PROXYCONFIG SET; values are bound, not spliced."""

    ocp_class_name = "com.alipay.ocp.service.task.business.obproxy.SyncObproxyParameterTask"

    def run(self, ctx: StepContext) -> None:
        params = self.request(ctx).parameters
        with proxysys(ctx, self) as cursor:
            previous = {p.name: show(cursor, p.name) for p in params}
            # Kept on the host beside the install, for rollback; written before anything changes.
            saved = self.saved_file(ctx)
            if self.sh(ctx, f"test -f {q(saved)}", check=False).exit_code != 0:
                self.sh(ctx, f"printf '%s' {q(json.dumps(previous))} > {q(saved)}")
            for param in params:
                cursor.execute(f"ALTER PROXYCONFIG SET {param.name} = %s", (param.value,))
                ctx.log.info(f"set {param.name} = {param.value!r} (was {previous[param.name]!r})")

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
        except pymysql.err.OperationalError as exc:
            ctx.log.info(f"obproxy is not running ({exc.args[-1]}): nothing to restore")
        self.sh(ctx, f"rm -f {q(saved)}")


def show(cursor: Any, name: str) -> str | None:
    cursor.execute("SHOW PROXYCONFIG LIKE %s", (name,))
    row = cursor.fetchone()
    return None if row is None else row[1]


class SetObproxyUserPassword(HostStep):
    """Give obproxy the obLink user's password (the registered OceanBase cluster's)."""

    ocp_class_name = "com.alipay.ocp.service.task.business.obproxy.SetObproxyUserPasswordForObTask"

    def run(self, ctx: StepContext) -> None:
        request = self.request(ctx)
        if not request.obLinks:
            ctx.log.info("no obLink: nothing to connect to yet")
            return
        link = request.obLinks[0]
        password = ctx.ob_clusters.proxy_password(link.obClusterId)
        if password is None:
            raise LookupError(
                f"OceanBase cluster {link.obClusterId} ({link.clusterName}) is no longer "
                "registered; register it again with 'ocptask obcluster add'"
            )
        ctx.log.add_secret(password)
        with proxysys(ctx, self) as cursor:
            cursor.execute("ALTER PROXYCONFIG SET observer_sys_password = %s", (password,))
        ctx.log.info(f"obproxy connects to {link.clusterName} as {link.username}")

    def rollback(self, ctx: StepContext) -> None:
        """Take the password back out (obproxy never shows the old one, so it was unset)."""
        try:
            with proxysys(ctx, self) as cursor:
                cursor.execute("ALTER PROXYCONFIG SET observer_sys_password = %s", ("",))
        except pymysql.err.OperationalError as exc:
            ctx.log.info(f"obproxy is not running ({exc.args[-1]}): nothing to take back")


class RegisterObproxyExporter(HostStep):
    ocp_class_name = "com.alipay.ocp.service.task.business.obproxy.RegisterObproxyExporterTask"

    def run(self, ctx: StepContext) -> None:
        request = self.request(ctx)
        target = self.target(ctx)
        url = f"http://{target.address}:{request.obproxyInstallParam.exportPort}/metrics"  # type: ignore[union-attr]
        with urllib.request.urlopen(url, timeout=10) as response:
            if response.status != 200:
                raise RuntimeError(f"{url} answered {response.status}")
        self.mark_server(ctx, "CREATING", exporter_url=url)
        ctx.log.info(f"exporter answers at {url}")

    def rollback(self, ctx: StepContext) -> None:
        self.mark_server(ctx, "CREATING", exporter_url=None)


class UpdateObproxyStatus(HostStep):
    ocp_class_name = "com.alipay.ocp.service.task.business.obproxy.UpdateObproxyStatusTask"

    def run(self, ctx: StepContext) -> None:
        self.mark_server(ctx, "RUNNING")

    def rollback(self, ctx: StepContext) -> None:
        self.mark_server(ctx, "CREATING")


def config_url(cluster_name: str) -> str:
    """OCP's config URL shape for CONFIG_URL mode (the value is passed quoted, never parsed)."""
    base = os.environ.get("OCPTASK_CONFIG_URL_BASE", "http://127.0.0.1:8080")
    return (
        f"{base}/services?Action=GetObProxyConfig&ObproxyClusterName={quote(cluster_name, safe='')}"
    )
