"""OCP's ``POST /api/v2/obproxy/clusters/{id}/takeOver``: OBProxies installed by other means join
a cluster, one "Install obproxy" task per host (OCP's 12 nodes, unsplit), each doing a
take-over's work (``takeover_steps``).

The body is OCP's ``{"hosts": [{"hostId", "sqlPort"}]}``; online OCP 4.3 adds
``hosts[].proxysysPasswd``, root@proxysys's password of that obproxy: it is sealed into the
server row at submit, never kept in a task's payload or context, never echoed in a refusal.
At submit, in one transaction: the tasks hold the cluster together and each its host, no host
may run an OBProxy already (of any cluster), and each host's server row is written
(TAKINGOVER), its id in its task's context as OCP's sample shows it.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field
from sqlalchemy import Connection

from engine import Engine, FieldError, RequestInvalid, Task, Template
from engine.db.subtask_log import MASK
from tasks.validation import Id, OcpBody, Port, parse, value_text

from . import audit_events
from . import install_steps as h
from . import takeover_steps as t
from .adopted import NEEDED
from .checks import host_addresses
from .cluster_steps import FinishObproxyInstall
from .clusters import cluster_row
from .per_host import claim_batch
from .prepare_steps import PrepareCreateObproxy, PrepareObproxyInstallOne, RefreshAgentConfig
from .records import ObproxyClusterRecord, ObproxyServerRecord
from .request import MAX_HOSTS
from .secret_parameters import is_secret, scrubbed
from .spec import Marked, new_mark
from .takeover_prepare import PrepareCreateTakenObproxy
from .templates import INSTALL_ONE_OBPROXY, in_line

SERVERS = ObproxyServerRecord.__table__  # type: ignore[attr-defined]
CLUSTERS = ObproxyClusterRecord.__table__  # type: ignore[attr-defined]
PROCESS_KEYWORDS = ("obproxy", "obproxyd.sh")  # OCP's sample's


class TakeOverHost(OcpBody):
    """OCP's ObproxyTakeOverParam."""

    hostId: Id
    sqlPort: Port
    proxysysPasswd: Annotated[str, value_text(128)] | None = Field(
        default=None,
        repr=False,
        description="OCP 4.3 (online docs): root@proxysys's password of that obproxy, if it has "
        "one; sealed at rest, never shown",
    )


class TakeOverRequest(OcpBody):
    hosts: Annotated[list[TakeOverHost], Field(min_length=1, max_length=MAX_HOSTS)]


class TakeOverPayload(Marked):
    """What a take-over task's steps read besides the records (``take_over`` tells the cluster's
    view to show its OBProxy TAKINGOVER while it runs)."""

    cluster_id: int
    creator: str
    host_id: int
    sql_port: int
    take_over: bool = True


# What a take-over does in place of each node of batchAdd's "Install obproxy" (its names,
# timeouts and order are the template's; ``RefreshAgentConfig`` is the same in both).
_TAKE_OVER_STEP: dict[type, type] = {
    PrepareObproxyInstallOne: t.PrepareTakeOver,
    PrepareCreateObproxy: PrepareCreateTakenObproxy,
    h.CheckProcessNotExist: t.CheckTakenProcess,
    h.CheckCommandExists: t.CheckTakeOverCommands,
    h.InstallRpmByPackageAndVersion: t.InstallNothing,
    h.StartObproxy: t.StartNothing,
    h.SyncObproxyParameter: t.ReadTakenParameters,
    h.SetObproxyUserPassword: t.KeepOwnConnection,
    RefreshAgentConfig: RefreshAgentConfig,
    h.RegisterObproxyExporter: t.RegisterTakenExporter,
    h.UpdateObproxyStatus: t.MarkTakenRunning,
    FinishObproxyInstall: t.FinishTakeOver,
}


def _template() -> Template:
    """batchAdd's per-host "Install obproxy", node for node, each doing a take-over's work."""
    return in_line(
        INSTALL_ONE_OBPROXY.name,
        [(_TAKE_OVER_STEP[n.step], n.name, n.timeout, None) for n in INSTALL_ONE_OBPROXY.nodes],
    )


TAKE_OVER_OBPROXY = _template()


@audit_events.take_over
def take_over_obproxies(
    engine: Engine, cluster_id: int, body: Any, creator: str = "admin"
) -> list[Task]:
    """Submit a take-over task per host of ``body`` (none if anything is refused); their
    records, in the order of ``hosts``."""
    request = _parsed(body)
    host_ids = [h.hostId for h in request.hosts]
    problems = _host_problems(engine, host_ids)
    if problems:
        raise RequestInvalid(problems)
    cluster = cluster_row(engine, cluster_id)
    ips = host_addresses(engine, host_ids, "hosts", ".hostId")
    seal = engine.store.secrets.seal  # the key is read (or made) before the transaction
    passwords = [seal(h.proxysysPasswd) if h.proxysysPasswd else None for h in request.hosts]
    mark = new_mark()
    each = [
        (
            _context(cluster, h.hostId),
            TakeOverPayload(
                cluster_id=cluster.id,  # type: ignore[arg-type]
                creator=creator,
                mark=mark,
                host_id=h.hostId,
                sql_port=h.sqlPort,
            ).model_dump(mode="json"),
        )
        for h in request.hosts
    ]

    rows = [
        {
            "host_id": host.hostId,
            "ip": ips[host.hostId],
            "sql_port": host.sqlPort,
            "exporter_port": 0,  # read from the obproxy by Prepare create obproxy
            "version": "",  # likewise
            "status": "TAKINGOVER",
            "parameter_version": 0,
            "proxysys_password": password,
        }
        for host, password in zip(request.hosts, passwords, strict=True)
    ]

    def held(conn: Connection, task_ids: list[int]) -> dict[int, dict[str, str]]:
        return claim_batch(conn, cluster.id, task_ids, rows, "hosts", ".hostId")  # type: ignore[arg-type]

    return engine.submit_batch(TAKE_OVER_OBPROXY, each, creator, also=held)


def _host_problems(engine: Engine, host_ids: list[int]) -> list[FieldError]:
    """Each unknown host, and each given a second time, at its place in ``hosts``."""
    known, seen = engine.hosts.existing(host_ids), set()
    problems = []
    for i, host_id in enumerate(host_ids):
        if host_id not in known:
            why = "does not exist"
        elif host_id in seen:
            why = "is given twice"
        else:
            why = ""
        if why:
            problems.append(FieldError(f"hosts[{i}].hostId", f"host {host_id} {why}", host_id))
        seen.add(host_id)
    return problems


def _context(cluster: ObproxyClusterRecord, host_id: int) -> dict[str, Any]:
    """A task's context as OCP's sample shows it (``obproxy_server_id`` is added at submit,
    ``package_version`` once Prepare create obproxy has read it: empty until then)."""
    return {
        "obproxy_cluster_id": str(cluster.id),
        "obproxy_cluster_name": cluster.name,
        "service_name": cluster.name,
        "host_id": str(host_id),
        "package_name": "obproxy",
        "package_version": "",
        "obproxy_parameter_version": str(cluster.parameter_version or 0),
        "obproxy_need_delete_cluster": "false",
        "commands_to_check": list(NEEDED),
        "process_keywords": list(PROCESS_KEYWORDS),
    }


def _parsed(body: Any) -> TakeOverRequest:
    """The body; a refusal never echoes a password (``secret_parameters``' rule and masking: a
    secret field's rejected value is masked, and whatever could be one in any other's)."""
    try:
        return parse(TakeOverRequest, body)
    except RequestInvalid as exc:
        raise RequestInvalid(
            [
                FieldError(
                    e.field,
                    e.message,
                    MASK if is_secret(e.field) else scrubbed(e.rejected_value),
                    e.object,
                )
                for e in exc.errors
            ]
        ) from None
