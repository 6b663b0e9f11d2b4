"""The take-over's first look at its host (OCP's "Prepare create obproxy" node, and what the
take-over's other steps on the host share): the obproxy listening on the SQL port is found and
recorded, where it runs from, how it was started, its version and exporter port, so that the
OBProxy's later tasks (``obproxy_host.HostStep``) work on it as on one ocptask installed.

What it reads of the process is ``adopted``'s; its command line may hold secrets, so the
search's output is never logged as it comes, and what is recorded and logged leaves them out.
"""

from __future__ import annotations

import pymysql

from engine import StepContext
from engine.errors import CommandResult
from tasks.hosts.steps import reach

from .adopted import (
    FOUND,
    MISSING,
    NEEDED,
    NOT_OURS,
    NOTHING,
    Process,
    find_script,
    parse_found,
    shown_command,
    unsafe_install_dir,
    version_said,
    without_secrets,
)
from .obproxy_host import HostStep, proxysys, q, show
from .process_shell import library_path
from .proxy_sql import ACCESS_DENIED

_BUSINESS = "com.alipay.ocp.service.task.business"
DEFAULT_EXPORTER_PORT = 2884  # obproxy's prometheus_listen_port when none is given


class TakeOverStep(HostStep):
    """A take-over step on its host: where the obproxy runs, once Prepare create obproxy
    recorded it; a command whose output is kept out of the log."""

    def taken_dir(self, ctx: StepContext) -> str:
        spec = self.spec(ctx)
        if not spec.install_dir:
            raise LookupError(
                f"host {self.host_id(ctx)}: where obproxy runs is not recorded yet (Prepare "
                "create obproxy has not succeeded): retry that first"
            )
        return spec.install_dir

    def quiet(self, ctx: StepContext, command: str) -> CommandResult:
        """Run without streaming its output to the log (it may show a secret)."""
        conn = self.ssh(ctx)
        ctx.log.info(f"[{conn.target.label}] $ {command}")
        ctx.log.info("(its output is not logged: a command line may hold a password)")
        return conn.run(command, timeout=60, stop=ctx.stop_requested, tag=self.tag(ctx))

    def listeners(self, ctx: StepContext) -> list[Process]:
        """The processes holding the SQL port's listening socket; an error naming the host and
        the port when there is none of the login user."""
        port, host = self.spec(ctx).sql_port, self.host_id(ctx)
        state, found = parse_found(self.quiet(ctx, find_script(port)).stdout)
        user = self.target(ctx).username
        if state == NOTHING:
            raise RuntimeError(
                f"host {host}: nothing listens on port {port}: there is no obproxy to take over"
            )
        if state.startswith(MISSING):
            raise RuntimeError(
                f"host {host}: command {state.split()[-1]} is missing there; a take-over runs "
                f"{', '.join(NEEDED)}"
            )
        if state == NOT_OURS:
            raise RuntimeError(
                f"host {host}: port {port} is listened on by no process of {user} (another "
                "user's): ocptask can only take over an obproxy its login user runs"
            )
        if state != FOUND or not found:
            raise RuntimeError(f"host {host}: the search for port {port}'s process said {state}")
        return found


class PrepareCreateTakenObproxy(TakeOverStep):
    """Find the obproxy on the SQL port and record it: its install directory (its working
    directory, holding bin/obproxy and run/obproxy.pid), its command line (without secrets),
    its version and exporter port, the host's architecture."""

    ocp_class_name = f"{_BUSINESS}.obproxy.PrepareCreateObproxyTask"
    plan = "reads: the obproxy on the SQL port, its directory, command line and version"

    def run(self, ctx: StepContext) -> None:
        host = self.host_id(ctx)
        facts = reach(ctx, host, self.ssh(ctx))
        port = self.spec(ctx).sql_port
        found = self.listeners(ctx)
        process = next((p for p in found if p.program()), found[0])
        program = process.program()
        if program is None:  # its command line is not ours to show: it may hold anything
            raise RuntimeError(
                f"host {host}: port {port} is held by pid {process.pid} ({process.exe}), no obproxy"
            )
        install, binary = process.cwd, program[1]
        if binary != f"{install}/bin/obproxy":
            raise RuntimeError(
                f"host {host}: obproxy pid {process.pid} runs {binary} from {install}: ocptask "
                "starts an obproxy as ./bin/obproxy from its own directory (as obd and OCP lay it "
                "out), so it cannot restart this one"
            )
        if process.pid_file != process.pid:
            raise RuntimeError(
                f"host {host}: {install}/run/obproxy.pid names {process.pid_file or 'nothing'}, "
                f"not pid {process.pid}: ocptask finds its obproxy by that file"
            )
        why = unsafe_install_dir(install, self.homes(ctx))
        if why:
            raise RuntimeError(
                f"host {host}: obproxy pid {process.pid} runs from {install}: {why}. Deleting "
                "an OBProxy taken over removes its directory, so ocptask takes over only one "
                "in a directory of its own (as obd and OCP lay it out)"
            )
        ctx.log.info(
            f"obproxy pid {process.pid} listens on port {port}: {shown_command(process.argv)}"
        )
        ctx.log.info(f"its executable is {process.exe}, it runs from {install}")
        options, dropped = without_secrets(process.options())
        if dropped:
            ctx.log.info(
                f"left out of its recorded command line: {', '.join(dropped)} (secrets; obproxy "
                "keeps them in its saved config, so its restarts still have them)"
            )
        version, exporter = self._asked(ctx, install, process)
        self.record_server(
            ctx,
            install_dir=install,
            startup_options=options,
            version=version,
            exporter_port=exporter,
            architecture=facts.architecture,
        )
        ctx.string_map["package_version"] = version
        ctx.log.info(
            f"recorded OBProxy server {self.spec(ctx).server_id}: version {version}, exporter "
            f"port {exporter}, install {install}, started with: {shown_command(options)}"
        )

    def _asked(self, ctx: StepContext, install: str, process: Process) -> tuple[str, int]:
        """Its version (``bin/obproxy -V``, else ``SHOW PROXYINFO BINARY``) and exporter port
        (its ``prometheus_listen_port``), asking it as root@proxysys."""
        told = self.sh(
            ctx,
            f"cd {q(install)} && {library_path(install)} ./bin/obproxy -V 2>&1; true",
            timeout=60,
        ).stdout
        host, port = self.host_id(ctx), self.spec(ctx).sql_port
        try:
            with proxysys(ctx, self) as cursor:
                exporter = show(cursor, "prometheus_listen_port")
                binary = ""
                if version_said(told) is None:
                    ctx.log.info("bin/obproxy -V did not say its version: asked by SQL")
                    cursor.execute("SHOW PROXYINFO BINARY")
                    binary = "\n".join(str(row[1]) for row in cursor.fetchall() if len(row) > 1)
        except pymysql.err.OperationalError as exc:
            if exc.args[0] != ACCESS_DENIED:
                raise RuntimeError(
                    f"host {host}: obproxy on port {port} does not answer SQL ({exc.args[-1]})"
                ) from None
            given = (
                "the proxysysPasswd given" if self.spec(ctx).proxysys_password else "no password"
            )
            raise RuntimeError(
                f"host {host}: obproxy on port {port} refuses root@proxysys with {given} "
                f"({exc.args[-1]}); give its password as hosts[].proxysysPasswd"
            ) from None
        version = version_said(told, binary)
        if version is None:
            raise RuntimeError(f"host {host}: obproxy on port {port} does not say its version")
        chosen = exporter or process.option("--prometheus_listen_port", "-l")
        return version, int(chosen) if chosen and chosen.isdigit() else DEFAULT_EXPORTER_PORT
