"""The base of every step that works on one OBProxy host, and what those steps share.

A host step finds its host through ``ctx.item("host_ids")`` (a copy of a chain split per host)
or ``stringMap.host_id`` (a task of its own per host, as OCP's batchAdd makes), and its OBProxy
through the cluster
in ``stringMap.obproxy_cluster_id``: the cluster's recorded startup parameters, parameters and
links, and the server row of that host (ports, version). Every task on a cluster (create, add,
restart, stop, start, upgrade, delete) reads them the same way, so a restart starts an OBProxy
exactly as its install did. Every value that reaches a remote shell goes through
``shlex.quote``.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy import select as core_select
from sqlmodel import select

from engine import Step, StepContext
from engine.clock import utcnow
from engine.errors import CommandFailed, ConnectionLost
from engine.remote.shell import stop_script
from engine.remote.ssh import SshConnection, SshTarget

from . import proxy_sql
from .packages import package_version
from .process_shell import library_path, live, owns_port
from .records import ObproxyClusterRecord, ObproxyServerRecord, touch
from .spec import Marked, ServerSpec

q = shlex.quote
# TERM, then KILL after this long (50 times 0.2 s): obproxy flushes its config and logs on TERM.
STOP_TRIES, STOP_PAUSE = 50, 0.2
START_WAIT_SECONDS = 30  # from the start until the started obproxy owns its SQL port
FOUND_RUNNING, LISTENING = "ocptask-found-running", "ocptask-listening-pid="
NOT_LISTENING = "ocptask-not-listening"  # a mark, not an exit code: obproxy's own may be any


class HostStep(Step):
    """Base of the per-host steps: host lookup, SSH, log streaming, server status on failure.

    Every step may be run again after a lost run: ``clean`` kills what the lost run's commands
    still run on the host (found by the subtask's tag), then the usual retry undoes and redoes
    the step. Each step's rollback undoes exactly what its execute did and is safe to run
    twice; a failing step marks its OBProxy server UNAVAILABLE (``status_on_failure``).
    """

    idempotent = True
    status_on_failure: str | None = "UNAVAILABLE"  # None: a failure leaves the status as it is

    def __init__(self) -> None:
        # One step instance serves one execution: what it looks up once stays valid throughout.
        self._spec: ServerSpec | None = None

    def execute(self, ctx: StepContext) -> None:
        try:
            try:
                self.run(ctx)
            except ConnectionLost as exc:
                # The pooled connection died under the step: stop what the cut run left, undo
                # it, and run it once more on a new connection; a second loss fails the step.
                ctx.log.warning(f"{exc}; running the step again on a new connection")
                self.clean(ctx)
                self.rollback(ctx)
                self.run(ctx)
        except Exception:
            if self.status_on_failure:
                self.mark_server(ctx, self.status_on_failure)
            raise

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
        mark = ctx.payload_as(Marked).mark
        return f"{mark}-{ctx.subtask_id}" if mark else f"subtask-{ctx.subtask_id}"

    @staticmethod
    def host_id(ctx: StepContext) -> int:
        if ctx.parallel_idx < 0 and "host_id" in ctx.string_map:
            return int(ctx.string_map["host_id"])  # a per-host task
        return int(ctx.item("host_ids"))

    @staticmethod
    def cluster_id(ctx: StepContext) -> int:
        return int(ctx.string_map["obproxy_cluster_id"])

    def spec(self, ctx: StepContext) -> ServerSpec:
        """The cluster's settings and this host's server row (read once per execution, in one
        statement: every step of every host chain reads it)."""
        if self._spec is None:
            cluster_id, host_id = self.cluster_id(ctx), self.host_id(ctx)
            with ctx.reading() as session:
                row = session.connection().execute(_SPEC, {"c": cluster_id, "h": host_id}).first()
            if row is None:
                raise LookupError(
                    f"OBProxy cluster {cluster_id} has no OBProxy on host {host_id} any more"
                )
            self._spec = ServerSpec(
                cluster_id=cluster_id,
                cluster_name=row.name,
                work_mode=row.work_mode,
                ob_links=list(row.ob_links or ()),
                startup_parameters=list(row.startup_parameters or ()),
                parameters=list(row.parameters or ()),
                server_id=row.id,
                sql_port=row.sql_port,
                exporter_port=row.exporter_port,
                version_file=row.version,
                install_dir=row.install_dir,
                startup_options=row.startup_options,
                proxysys_password=row.proxysys_password,
                config_url=row.config_url,
            )
        return self._spec

    def version_file(self, ctx: StepContext) -> str:
        """The package this step works with: the server's recorded one (an upgrade overrides)."""
        return self.spec(ctx).version_file

    def ssh(self, ctx: StepContext) -> SshConnection:
        return ctx.ssh(self.host_id(ctx))

    def target(self, ctx: StepContext) -> SshTarget:
        """The host's address and login (read once per execution)."""
        return self.ssh(ctx).target

    def sh(
        self,
        ctx: StepContext,
        command: str,
        *,
        timeout: float | None = None,
        check: bool = True,
        tagged: bool = True,
    ) -> Any:
        """Run on this copy's host; output lines go to the subtask log as they arrive. Untagged,
        it leaves no mark in ``~/.ocptask/run`` (for the command that removes that folder)."""
        conn = self.ssh(ctx)
        ctx.log.info(f"[{conn.target.label}] $ {command}")
        return conn.run(
            command,
            timeout=timeout,
            check=check,
            stop=ctx.stop_requested,
            on_output=lambda stream, text: ctx.log.info(f"[{stream}] {text}"),
            tag=self.tag(ctx) if tagged else None,
        )

    def home(self, ctx: StepContext) -> str:
        """The login's home on the host (asked once per connection, ``SshConnection.home``)."""
        return self.ssh(ctx).home()

    def homes(self, ctx: StepContext) -> list[str]:
        """The login's home as it names it and as it resolves on the host (``/proc`` shows a
        process's working directory resolved): what ``adopted.unsafe_install_dir`` guards."""
        home = self.home(ctx)
        resolved = self.sh(ctx, f"cd {q(home)} && pwd -P", check=False).stdout.strip()
        return [home, resolved] if resolved.startswith("/") else [home]

    def install_dir(self, ctx: StepContext, version_file: str | None = None) -> str:
        """Where the package runs from: ``~/obproxy-<version>``, or the directory of an OBProxy
        taken over, for the version it was taken over at."""
        spec, version_file = self.spec(ctx), version_file or self.version_file(ctx)
        if spec.install_dir and version_file == spec.version_file:
            return spec.install_dir
        return f"{self.home(ctx)}/obproxy-{package_version(version_file)}"

    def server(self, ctx: StepContext, session: Any) -> ObproxyServerRecord | None:
        query = select(ObproxyServerRecord).where(
            ObproxyServerRecord.cluster_id == self.cluster_id(ctx),
            ObproxyServerRecord.host_id == self.host_id(ctx),
        )
        return session.exec(query).first()

    def mark_server(self, ctx: StepContext, status: str, **values: Any) -> None:
        self.record_server(ctx, status=status, **values)

    def record_server(self, ctx: StepContext, **values: Any) -> None:
        """Set these columns of this host's server row; the row's and its cluster's update
        times move with them."""
        if "obproxy_cluster_id" not in ctx.string_map:
            return  # a create whose Prepare never ran: no row to mark
        with ctx.session() as session:
            server = self.server(ctx, session)
            if server is not None:
                for key, value in values.items():
                    setattr(server, key, value)
                server.update_time = utcnow()
                session.add(server)
                touch(session, server.cluster_id, server.update_time)

    # -- the obproxy process of an install directory ---------------------------------------

    def pid(self, ctx: StepContext, install: str) -> int | None:
        out = self.sh(ctx, f'{live(install)} && echo "$p"', check=False).stdout.strip()
        return int(out) if out.isdigit() else None

    def start_process(self, ctx: StepContext, install: str) -> bool:
        """Start obproxy from ``install`` with the recorded startup parameters; done when the
        started pid owns the SQL port. An obproxy already running from there is kept. True if
        one was already running.

        One remote script does it all (look, start, wait until the port is owned): one round
        trip instead of one per check, and the wait polls on the host every 0.1 s. The install's
        ``lib/`` comes first on the library path: the real RPM bundles its libstdc++ there."""
        spec = self.spec(ctx)
        args = " ".join(q(a) for a in spec.start_args())
        script = (
            f"if {live(install)}; then echo {FOUND_RUNNING}; "
            f"else cd {q(install)} && {library_path(install)} {args} || exit $?; fi; "
            f"end=$(($(date +%s) + {START_WAIT_SECONDS})); "
            f'while [ "$(date +%s)" -lt "$end" ]; do '
            f"if {live(install)} && {owns_port(spec.sql_port)}; then "
            f'echo "{LISTENING}$p"; exit 0; fi; sleep 0.1; done; '
            f"echo {NOT_LISTENING}; exit 1"
        )
        result = self.sh(ctx, script, check=False)  # the step's timeout bounds a hung start
        found = FOUND_RUNNING in result.stdout.split()
        if found:
            ctx.log.info("obproxy already runs from this install: not started again")
        if result.exit_code != 0 and NOT_LISTENING in result.stdout.split():
            raise RuntimeError(
                f"obproxy did not listen on port {spec.sql_port} within {START_WAIT_SECONDS} s"
            )
        if result.exit_code != 0:  # the start itself failed: its output says why
            raise CommandFailed(result)
        pid = result.stdout.rsplit(LISTENING, 1)[-1].split()[0]
        ctx.log.info(f"obproxy pid {pid} listens on port {spec.sql_port}")
        return found

    def stop_process(self, ctx: StepContext, install: str) -> None:
        """TERM the obproxy of ``install``, KILL it if it is still there 10 s later."""
        pid = self.pid(ctx, install)
        if pid is None:
            ctx.log.info(f"no obproxy runs from {install}")
        else:
            self.sh(ctx, stop_script(str(pid), tries=STOP_TRIES, pause=STOP_PAUSE))
            ctx.log.info(f"stopped obproxy pid {pid}")
        self.sh(ctx, f"rm -f {q(install)}/run/obproxy.pid")


_CLUSTERS = ObproxyClusterRecord.__table__  # type: ignore[attr-defined]
_SERVERS = ObproxyServerRecord.__table__  # type: ignore[attr-defined]
_SPEC = (
    core_select(
        _CLUSTERS.c.name,
        _CLUSTERS.c.work_mode,
        _CLUSTERS.c.ob_links,
        _CLUSTERS.c.startup_parameters,
        _CLUSTERS.c.parameters,
        _CLUSTERS.c.config_url,
        _SERVERS.c.id,
        _SERVERS.c.sql_port,
        _SERVERS.c.exporter_port,
        _SERVERS.c.version,
        _SERVERS.c.install_dir,
        _SERVERS.c.startup_options,
        _SERVERS.c.proxysys_password,
    )
    .join(_SERVERS, _SERVERS.c.cluster_id == _CLUSTERS.c.id)
    .where(_CLUSTERS.c.id == bindparam("c"), _SERVERS.c.host_id == bindparam("h"))
)


@contextmanager
def proxysys(ctx: StepContext, step: HostStep) -> Iterator[Any]:
    """A PyMySQL cursor on this host's obproxy as root@proxysys, with the passwords it may have
    (``ServerSpec.admin_passwords``), masked in the step's log."""
    spec = step.spec(ctx)
    passwords = spec.admin_passwords(ctx.open_secret)
    for password in passwords:
        ctx.log.add_secret(password)
    conn = proxy_sql.connect(
        step.target(ctx).address,
        spec.sql_port,
        connect_timeout=10,
        read_timeout=30,
        passwords=passwords,
    )
    try:
        with conn.cursor() as cursor:
            yield cursor
    finally:
        conn.close()


def show(cursor: Any, name: str) -> str | None:
    cursor.execute("SHOW PROXYCONFIG LIKE %s", (name,))
    row = cursor.fetchone()
    return None if row is None else row[1]
