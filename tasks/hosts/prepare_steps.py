"""The nodes of OCP's "Prepare host" task, one task per host (``stringMap.host_id``).

OCP's chain prepares a host for its agent: a pre check, the removal of an OBAgent and of an
OCP agent left from an earlier install, the agent's install, then the host's status. ocptask
has no agent, it runs its commands over SSH: the pre check and the status are real, the two
legacy-agent nodes look for such agents and report them (ocptask did not install them, so it
never stops or removes them), and "Install ocp agent" says there is nothing to install. The
class names are ours, in the style of OCP's host tasks (OCP's page does not show them).
"""

from __future__ import annotations

import shlex
from typing import ClassVar

from engine import Step, StepContext
from engine.errors import AuthFailed, HostKeyMismatch, HostUnreachable
from engine.remote.host_record import HostStatus

from .steps import pre_check

q = shlex.quote
OCP_HOST_TASKS = "com.alipay.ocp.service.task.business.host"

# Process names (``pgrep -x``): OBAgent 4.x runs ob_agentd, ob_mgragent and ob_monagent,
# OBAgent 1.x monagent; OCP's agent ocp_agentd, ocp_mgragent and ocp_monagent.
OBAGENT_PROCESSES = ("ob_agentd", "ob_mgragent", "ob_monagent", "monagent")
OCP_AGENT_PROCESSES = ("ocp_agentd", "ocp_mgragent", "ocp_monagent")


def host_of(ctx: StepContext) -> int:
    """The host of this "Prepare host" task."""
    return int(ctx.string_map["host_id"])


class PreCheckForCreateHost(Step):
    """Reach the host over SSH (pinning its key), read its facts, check the commands installs
    need. A reached host stays NEW until "Update host status"; an unreachable one is OFFLINE."""

    ocp_class_name = f"{OCP_HOST_TASKS}.PreCheckForCreateHostTask"
    plan = "reads: connects over SSH (pinning the host key), its facts, the commands installs need"
    idempotent = True

    def execute(self, ctx: StepContext) -> None:
        host_id = host_of(ctx)
        pre_check(ctx, host_id)
        # Reached (again, after an OFFLINE try): not initialized until "Update host status".
        ctx.hosts.set_status(host_id, HostStatus.NEW)


class LegacyAgentCheck(Step):
    """Look for a running ``agent`` (its ``processes``) on the host and say what was found. OCP
    uninstalls such an agent here; ocptask did not install it and does not use one, so it leaves
    it running and untouched."""

    agent: ClassVar[str] = ""
    processes: ClassVar[tuple[str, ...]] = ()
    idempotent = True

    def execute(self, ctx: StepContext) -> None:
        host_id = host_of(ctx)
        try:
            conn = ctx.ssh(host_id)
            # One name a time (pgrep -x matches names of 15 characters at most); pgrep exits 1
            # when nothing matches: only 2 and up (or no pgrep) is a failure.
            names = " ".join(q(name) for name in self.processes)
            command = f'for name in {names}; do pgrep -a -x "$name"; [ $? -le 1 ] || exit 2; done'
            ctx.log.info(f"[{conn.target.label}] $ {command}")
            found = conn.run(command, timeout=60, stop=ctx.stop_requested).stdout.splitlines()
        except (HostUnreachable, HostKeyMismatch, AuthFailed):
            ctx.hosts.set_status(host_id, HostStatus.OFFLINE)
            raise
        running = [line.strip() for line in found if line.strip()]
        if not running:
            ctx.log.info(f"no {self.agent} runs on {conn.target.label}: nothing to uninstall")
            return
        for line in running:
            ctx.log.info(f"found {self.agent} process: {line}")
        ctx.log.warning(
            f"{len(running)} {self.agent} process(es) run on {conn.target.label}: left alone "
            "(ocptask did not install them and neither stops nor removes them; it uses no agent)"
        )


class UninstallLegacyObAgent(LegacyAgentCheck):
    ocp_class_name = f"{OCP_HOST_TASKS}.UninstallLegacyObAgentTask"
    plan = "reads: whether an OBAgent runs on the host (reported, never stopped)"
    agent = "OBAgent"
    processes = OBAGENT_PROCESSES


class UninstallLegacyOcpAgent(LegacyAgentCheck):
    ocp_class_name = f"{OCP_HOST_TASKS}.UninstallLegacyOcpAgentTask"
    plan = "reads: whether an OCP agent runs on the host (reported, never stopped)"
    agent = "OCP agent"
    processes = OCP_AGENT_PROCESSES


class InstallOcpAgent(Step):
    """OCP installs its agent here. ocptask has none: it runs every command over SSH."""

    ocp_class_name = f"{OCP_HOST_TASKS}.InstallOcpAgentTask"
    plan = "nothing: ocptask has no agent (it runs its commands over SSH)"
    idempotent = True

    def execute(self, ctx: StepContext) -> None:
        label = ctx.hosts.label(str(host_of(ctx)))
        ctx.log.info(
            f"nothing installed on {label}: ocptask has no OCP agent, it runs its commands on "
            "the host over SSH"
        )


class UpdateHostStatus(Step):
    """The host prepared: AVAILABLE (shown ONLINE once a service runs on it), as OCP's last
    node leaves a host ready for its services."""

    ocp_class_name = f"{OCP_HOST_TASKS}.UpdateHostStatusTask"
    plan = "records: the host is AVAILABLE"
    idempotent = True

    def execute(self, ctx: StepContext) -> None:
        host_id = host_of(ctx)
        host = ctx.hosts.get(host_id)  # HostNotFound if it was removed meanwhile
        ctx.hosts.set_status(host_id, HostStatus.AVAILABLE)
        ctx.log.info(
            f"host {host_id}, {host.name} ({host.inner_ip_address}), is AVAILABLE "
            f"(was {host.status.value})"
        )
