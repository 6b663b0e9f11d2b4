"""Cluster edits that need no task: a cluster's address and port, and its obLinks (OCP's PATCH
of a cluster, ``obLinks/batchAdd`` and ``DELETE obLinks/{obClusterName}``).

They change the cluster's record only: running OBProxies keep what they started with until they
are restarted. An added link must name a registered OceanBase cluster by id and name, as at
create; a cluster links each OceanBase cluster once; a cluster in RS_LIST mode has exactly one
link (its OBProxies start from it), so it can neither gain a second nor lose its only one.
Each edit reads and writes the row under its lock, so two edits at once never lose one, and is
refused (ResourceBusy, HTTP 409) while a task holds the cluster (``engine.states.holds``).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field
from sqlmodel import Session

from engine import Engine, FieldError, NotFound, RequestInvalid
from engine.db.row_ids import is_row_id
from engine.errors import found
from engine.states import holds
from tasks.validation import parse

from . import audit_events
from .clusters import ObproxyClusterNotFound, get_cluster
from .create import resolve_links
from .records import ObproxyClusterRecord, hold, touch
from .request import MAX_OB_LINKS, Address, ObLink, Port, _Model


class ClusterEdit(_Model):
    """PATCH body: the fields given are set (``null`` clears), the others kept."""

    address: Address | None = None
    port: Port | None = None


class _Links(_Model):
    obLinks: Annotated[list[ObLink], Field(min_length=1, max_length=MAX_OB_LINKS)]


@audit_events.patch
def edit_cluster(engine: Engine, cluster_id: int, body: Any) -> dict[str, Any]:
    """Set the cluster's address and/or port; its view as OCP shows it."""
    edit = parse(ClusterEdit, body)
    with engine.store.write() as session:
        row = _locked(session, cluster_id)
        for field in edit.model_fields_set:
            setattr(row, field, getattr(edit, field))
        if edit.model_fields_set:
            touch(session, cluster_id)
        session.add(row)
    return get_cluster(engine, cluster_id)


@audit_events.add_link
def add_links(engine: Engine, cluster_id: int, body: Any) -> None:
    """Link more OceanBase clusters (``body``: a JSON array of obLinks)."""
    links = parse(_Links, {"obLinks": body}).obLinks
    problems = resolve_links(engine, links)
    if problems:
        raise RequestInvalid(problems)
    with engine.store.write() as session:
        row = _locked(session, cluster_id)
        have = {link["clusterName"] for link in row.ob_links}
        for i, link in enumerate(links):
            if link.clusterName in have:
                problems.append(
                    FieldError(
                        f"obLinks[{i}].clusterName",
                        f"cluster {row.name!r} already links {link.clusterName!r}",
                        link.clusterName,
                    )
                )
            have.add(link.clusterName)
        if row.work_mode == "RS_LIST":
            problems.append(
                FieldError(
                    "obLinks", "a cluster in RS_LIST mode links exactly one OceanBase cluster"
                )
            )
        if len(row.ob_links) + len(links) > MAX_OB_LINKS:
            problems.append(FieldError("obLinks", f"a cluster links at most {MAX_OB_LINKS}"))
        if problems:
            raise RequestInvalid(problems)
        row.ob_links = [*row.ob_links, *(link.model_dump() for link in links)]
        touch(session, cluster_id)
        session.add(row)


@audit_events.delete_link
def remove_link(engine: Engine, cluster_id: int, ob_cluster_name: str) -> None:
    """Unlink the OceanBase cluster of that name."""
    with engine.store.write() as session:
        row = _locked(session, cluster_id)
        kept = [link for link in row.ob_links if link.get("clusterName") != ob_cluster_name]
        if len(kept) == len(row.ob_links):
            raise NotFound(f"OBProxy cluster {cluster_id} has no obLink {ob_cluster_name!r}.")
        if row.work_mode == "RS_LIST" and not kept:
            raise RequestInvalid(
                [
                    FieldError(
                        "obClusterName",
                        f"{ob_cluster_name!r} is the only link of cluster {row.name!r} (RS_LIST "
                        "mode): its OBProxies start from it",
                        ob_cluster_name,
                        "path",
                    )
                ]
            )
        row.ob_links = kept
        touch(session, cluster_id)
        session.add(row)


def _locked(session: Session, cluster_id: int) -> ObproxyClusterRecord:
    """The cluster's row, locked; ResourceBusy while a task holds the cluster."""
    row = None
    if is_row_id(cluster_id):
        row = session.get(ObproxyClusterRecord, cluster_id, with_for_update=True)
    row = found(row, ObproxyClusterNotFound, cluster_id)
    holds.check(session.connection(), *hold(cluster_id))
    return row
