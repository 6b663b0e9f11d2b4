"""The OBProxies on hosts, as OCP's host record lists them (``services``): one OB_PROXY
service per OBProxy server, named by its OBProxy cluster, with the version it runs.

Every server row counts, from the install that writes it (CREATING) to the delete that removes
it, as the host guard (``records.obproxy_on_host``) counts it: a host is in use, and ONLINE,
for as long as an OBProxy of ocptask's is on it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

from sqlmodel import Session, col, select

from engine import ServiceSummary, ServiceType

from .packages import shown_version
from .records import ObproxyClusterRecord, ObproxyServerRecord


def obproxy_services(
    session: Session, host_ids: Collection[int]
) -> Iterator[tuple[int, ServiceSummary]]:
    query = (
        select(ObproxyServerRecord.host_id, ObproxyServerRecord.version, ObproxyClusterRecord.name)
        .join(ObproxyClusterRecord, col(ObproxyClusterRecord.id) == ObproxyServerRecord.cluster_id)
        .where(col(ObproxyServerRecord.host_id).in_(list(host_ids)))
        .order_by(col(ObproxyServerRecord.id))
    )
    for host_id, version, cluster in session.exec(query).all():
        yield host_id, ServiceSummary(cluster, ServiceType.OB_PROXY, shown_version(version))
