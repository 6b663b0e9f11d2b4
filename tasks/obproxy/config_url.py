"""An OBProxy cluster's config URL in CONFIG_URL mode: where its OBProxies fetch the OceanBase
clusters they serve (``ocptask serve``'s config server, ``api.routes.config_server``).

It is made from the Engine's public URL (``engine.public_url``) in OCP's shape, recorded on the
cluster when its first OBProxy is submitted (or at its create, when the public URL is known then),
and never changed after: the OBProxies were started with it. A CONFIG_URL cluster with hosts and
no public URL known is refused at submit, naming the setting, so no OBProxy is ever pointed at a
guessed address.
"""

from __future__ import annotations

from sqlalchemy import Connection, update
from sqlalchemy import select as sql_select

from engine import Engine, FieldError, RequestInvalid
from tasks.obclusters.cluster import ObCluster
from tasks.obclusters.config_server import services_url
from tasks.obclusters.registry import ObClusters

from .records import ObproxyClusterRecord, touch_row

CLUSTERS = ObproxyClusterRecord.__table__  # type: ignore[attr-defined]
SETTING = (
    "'ocptask serve --public-url URL' ($OCPTASK_PUBLIC_URL for the daemon and the command line, "
    "Engine(public_url=...) embedded)"
)


def config_url(public_url: str, cluster_name: str) -> str:
    """OCP's configUrl (``…/services?Action=GetObProxyConfig&User_ID=alibaba&UID=admin&
    ObproxyClusterName=NAME``; the two fixed parameters are OCP's, ignored by the server)."""
    params = {"User_ID": "alibaba", "UID": "admin", "ObproxyClusterName": cluster_name}
    return services_url(public_url, "GetObProxyConfig", **params)


def no_public_url(field: str, value: object) -> FieldError:
    """The refusal of a CONFIG_URL submit on hosts without a public URL, naming the setting."""
    return FieldError(
        field,
        "CONFIG_URL mode needs the URL at which the hosts reach ocptask's config server, and "
        f"none is set: give it with {SETTING}, or use RS_LIST mode",
        value,
    )


def first_config_url(engine: Engine, work_mode: str, cluster_name: str) -> str | None:
    """The config URL a new cluster records: OCP's, when its mode needs one and it is known."""
    if work_mode != "CONFIG_URL" or engine.public_url is None:
        return None
    return config_url(engine.public_url, cluster_name)


def ensure_config_url(engine: Engine, conn: Connection, cluster_id: int, field: str) -> None:
    """In the submit of a task that starts OBProxies of a cluster: a CONFIG_URL cluster without
    a config URL yet (created without hosts, or before ocptask served one) gets it now; with no
    public URL known the submit is refused at ``field``."""
    query = sql_select(CLUSTERS.c.name, CLUSTERS.c.work_mode, CLUSTERS.c.config_url)
    row = conn.execute(query.where(CLUSTERS.c.id == cluster_id)).first()
    if row is None or row.work_mode != "CONFIG_URL" or row.config_url:
        return
    if engine.public_url is None:
        raise RequestInvalid([no_public_url(field, None)])
    url = config_url(engine.public_url, row.name)
    conn.execute(update(CLUSTERS).where(CLUSTERS.c.id == cluster_id).values(config_url=url))
    touch_row(conn, cluster_id)


def served_clusters(engine: Engine, proxy_cluster_name: str) -> list[ObCluster] | None:
    """The registered OceanBase clusters an OBProxy cluster links to (what its OBProxies serve
    in CONFIG_URL mode); None when no OBProxy cluster has that name. A link to a cluster no
    longer registered is left out: its root servers are unknown."""
    query = sql_select(CLUSTERS.c.ob_links).where(CLUSTERS.c.name == proxy_cluster_name)
    with engine.store.read() as session:
        row = session.connection().execute(query).first()
    if row is None:
        return None
    ids = [link.get("obClusterId") for link in row.ob_links or ()]
    found = ObClusters(engine).found(i for i in ids if isinstance(i, int))
    return [found[i] for i in dict.fromkeys(ids) if i in found]
