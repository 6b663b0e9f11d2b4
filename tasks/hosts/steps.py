"""Host preparation: reach a host over SSH, pin its key, learn what it is, check the commands
installs need.

``reach`` and ``check_commands`` are the shared helpers: any step that first contacts a host
(the OBProxy install chain's first check, or "Prepare host"'s ``pre_check``) reaches it the
same way, and its first command is the one that reads the host's architecture and operating
system (``engine.remote.host_facts``), so knowing them costs no extra round trip. Task packages
declare the commands their steps run on hosts (``engine.packages``); Prepare host checks them
all. This package knows no task package above it.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable

from engine import Step, StepContext
from engine.errors import AuthFailed, CommandResult, HostKeyMismatch, HostUnreachable
from engine.remote.host_facts import FACTS_COMMAND, HostFacts
from engine.remote.host_record import HostStatus
from engine.remote.ssh import SshConnection

q = shlex.quote


def reach(
    ctx: StepContext, host_id: int, conn: SshConnection, *, available: bool = True
) -> HostFacts:
    """Connect and read the host's facts; mark the host OFFLINE if that fails, pin a key
    accepted on first use, record the facts and (with ``available``) mark it AVAILABLE."""
    registry = ctx.hosts
    try:
        told = conn.run(FACTS_COMMAND, timeout=60)
    except (HostUnreachable, HostKeyMismatch, AuthFailed):
        registry.set_status(host_id, HostStatus.OFFLINE)
        raise
    if conn.learned_host_key:
        registry.pin(host_id, conn.learned_host_key)
        ctx.log.warning(f"trusted on first use and pinned: {conn.learned_host_key}")
    facts = HostFacts.parse(told.stdout)
    registry.reached(host_id, facts, HostStatus.AVAILABLE if available else None)
    return facts


def missing_commands(run: Callable[[str], CommandResult], commands: Iterable[str]) -> list[str]:
    """Which of ``commands`` the host's login shell cannot find; ``run`` runs one shell line."""
    script = "; ".join(f"command -v {q(c)} >/dev/null || echo {q(c)}" for c in commands)
    return run(script).stdout.split()


def check_commands(run: Callable[[str], CommandResult], commands: Iterable[str]) -> None:
    missing = missing_commands(run, commands)
    if missing:
        raise RuntimeError(f"commands missing on the host: {', '.join(missing)}")


def pre_check(ctx: StepContext, host_id: int) -> None:
    """Reach the host (pinning its key if trust on first use was asked), learn its architecture
    and operating system, and check the commands installs need. A host that cannot be reached is
    OFFLINE; one reached but not ready (a command missing, the step cancelled) is NEW, as OCP
    leaves a host it has not initialized. It only reads the host: running it again is safe."""
    registry = ctx.hosts
    try:
        conn = ctx.ssh(host_id)
        ctx.log.info(f"reaching {conn.target.label} as {conn.target.username}")
        facts = reach(ctx, host_id, conn, available=False)
        ctx.log.info(
            f"architecture {facts.architecture or 'unknown'}, operating system "
            f"{facts.operating_system or 'unknown'} "
            f"({facts.operating_system_release or 'release unknown'})"
        )

        def run(command: str) -> CommandResult:
            ctx.log.info(f"[{conn.target.label}] $ {command}")
            return conn.run(
                command,
                timeout=60,
                stop=ctx.stop_requested,
                on_output=lambda stream, text: ctx.log.info(f"[{stream}] {text}"),
            )

        commands = registry.required_commands
        check_commands(run, commands)
        ctx.log.info(f"found {', '.join(commands)}")
    except (HostUnreachable, HostKeyMismatch, AuthFailed):
        registry.set_status(host_id, HostStatus.OFFLINE)
        raise
    except BaseException:
        registry.set_status(host_id, HostStatus.NEW)
        raise


class PrepareHost(Step):
    """The one step of the "Prepare host" tasks made before a batchCreate made a task per host
    (one copy per host, split over ``listMap.host_ids``): the pre check, then the host is
    AVAILABLE. Kept so that those records load, show and retry; no template uses it now.
    """

    ocp_class_name = "com.alipay.ocp.service.task.business.host.PrepareHostTask"
    idempotent = True

    def execute(self, ctx: StepContext) -> None:
        host_id = int(ctx.item("host_ids"))
        pre_check(ctx, host_id)
        ctx.hosts.set_status(host_id, HostStatus.AVAILABLE)
        ctx.log.info(f"host {host_id} is AVAILABLE")
