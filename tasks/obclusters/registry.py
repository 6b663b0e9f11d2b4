"""The OceanBase cluster registry: what OCP knows about the clusters an OBProxy connects to.

An obLink names a cluster by ``obClusterId``; OCP answers from its metadb with the cluster's root
servers (for ``--rs_list`` in RS_LIST mode) and the proxyro password obproxy logs in with. Here
the operator registers them once (``ocptask obcluster add``); a create request then needs nothing
beyond what OCP's documentation shows. The password is sealed at rest and never leaves this
module except through ``proxy_password`` (for the step that hands it to obproxy).

How a registered cluster is shown (its root servers, OCP's ObCluster) is ``cluster``'s.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel, col, func, select

from engine import Engine, FieldError, NotFound, RequestInvalid, StepContext, concerns, members
from engine.audit import Operation
from engine.audit_calls import recorded
from engine.clock import as_utc, utcnow
from engine.db.records import timestamp
from engine.db.row_ids import is_row_id
from engine.errors import found
from engine.public_url import http_url

from .cluster import REGISTERED, STATUSES, ObCluster, RootServer

MAX_ID = 2**63 - 1


class ObClusterNotFound(NotFound):
    what = "OceanBase cluster"


_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


class ObClusterRecord(SQLModel, table=True):
    __tablename__ = "ob_cluster"

    # The obClusterId, not a surrogate (obLinks name it): any Long, so BIGINT.
    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    name: str = Field(index=True)
    rs_list: str
    # Each root server's role (LEADER, FOLLOWER), in rs_list's order, when it was registered
    # with them (through the config server, ``register``); NULL when registered without.
    rs_roles: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    config_url: str | None = None
    proxy_password: str  # sealed; "" when none was registered (``register`` gives none)
    create_time: datetime = timestamp(nullable=False)
    update_time: datetime = timestamp(nullable=False)


def _rs_list_problem(value: object) -> str | None:
    if not isinstance(value, str) or not value or len(value) > 4096:
        return "must be 'ip:port;ip:port…' (at most 4096 characters)"
    for entry in value.split(";"):
        try:
            RootServer.parse(entry)
        except ValueError as exc:
            return str(exc)
    return None


def _check(
    cluster_id: object, name: object, rs_list: object, config_url: object
) -> list[FieldError]:
    problems = []
    if not isinstance(cluster_id, int) or isinstance(cluster_id, bool):
        problems.append(FieldError("obClusterId", "must be a whole number", cluster_id))
    elif not 1 <= cluster_id <= MAX_ID:
        problems.append(FieldError("obClusterId", f"must be 1 to {MAX_ID}", cluster_id))
    if not isinstance(name, str) or not _NAME.match(name):
        problems.append(
            FieldError("name", "must be 1-64 letters, digits or _.- (not starting with . or -)")
        )
    problem = _rs_list_problem(rs_list)
    if problem:
        problems.append(FieldError("rsList", problem, rs_list))
    if config_url is not None and http_url(config_url, 1024) is None:
        problem = "must be an http(s) URL of at most 1024 characters"
        problems.append(FieldError("configUrl", problem))
    return problems


def _password_problems(password: object) -> list[FieldError]:
    if (
        not isinstance(password, str)
        or not 1 <= len(password) <= 128
        or any(unicodedata.category(c) == "Cc" for c in password)
    ):
        return [FieldError("password", "must be 1 to 128 characters without control characters")]
    return []


def registered(conn: Connection) -> Iterator[tuple[str, int | None, str | None]]:
    """Every registered cluster, as tasks' obLinks name it (by id, and by name): retention keeps
    the last task about each."""
    table = ObClusterRecord.__table__  # type: ignore[attr-defined]
    for cluster_id, name in conn.execute(select(table.c.id, table.c.name)):
        yield concerns.OB_CLUSTER, cluster_id if is_row_id(cluster_id) else None, name


class ObClusters:
    """Register, list, get and remove the OceanBase clusters of an Engine's database."""

    def __init__(self, engine: Engine) -> None:
        self.store = engine.store
        self.store.ensure_schema()

    def add(
        self,
        cluster_id: int,
        name: str,
        *,
        rs_list: str,
        password: str,
        config_url: str | None = None,
    ) -> ObCluster:
        """Register the cluster ``obClusterId`` = ``cluster_id``, or update the one with it."""
        info = {"obClusterId": cluster_id, "name": name, "rsList": rs_list, "configUrl": config_url}
        with _event(self.store, "REGISTER_OB_CLUSTER", name, info) as done:
            done.resource_id = cluster_id if isinstance(cluster_id, int) else None
            return self._add(cluster_id, name, rs_list, password, config_url)

    def _add(
        self, cluster_id: int, name: str, rs_list: str, password: str, config_url: str | None
    ) -> ObCluster:
        problems = _check(cluster_id, name, rs_list, config_url) + _password_problems(password)
        if problems:
            raise RequestInvalid(problems)
        sealed = self.store.secrets.seal(password)

        def change(rec: ObClusterRecord) -> None:
            rec.name, rec.rs_list, rec.config_url = name, rs_list, config_url
            rec.rs_roles = None  # the roles registered with the old list, if any, are not its
            rec.proxy_password = sealed  # type: ignore[assignment]

        return self._write(cluster_id, name, rs_list, change)

    def register(
        self, cluster_id: int, name: str, root_servers: Sequence[tuple[RootServer, str]]
    ) -> ObCluster:
        """The root servers (with their roles) a cluster's observers registered through the
        config server: a new entry, or new root servers for the one with this id. Never the
        proxyro password (a new entry has none until ``obcluster add`` gives it one; an existing
        one keeps its own) and never the name: an id registered under another name is refused,
        since obLinks name a cluster by both."""
        rs_list = ";".join(server.entry for server, _ in root_servers)
        info = {"obClusterId": cluster_id, "name": name, "rsList": rs_list}
        with _event(self.store, "REGISTER_OB_ROOT_SERVICE", name, info) as done:
            done.resource_id = cluster_id
            return self._register(cluster_id, name, rs_list, root_servers)

    def _register(
        self,
        cluster_id: int,
        name: str,
        rs_list: str,
        root_servers: Sequence[tuple[RootServer, str]],
    ) -> ObCluster:
        problems = _check(cluster_id, name, rs_list, None)
        if problems:
            raise RequestInvalid(problems)

        def change(rec: ObClusterRecord) -> None:
            if rec.name != name:
                message = f"OceanBase cluster {cluster_id} is registered as {rec.name!r}"
                raise RequestInvalid([FieldError("name", message, name)])
            rec.rs_list, rec.rs_roles = rs_list, [role for _, role in root_servers]

        return self._write(cluster_id, name, rs_list, change)

    def _write(
        self, cluster_id: int, name: str, rs_list: str, change: Callable[[ObClusterRecord], None]
    ) -> ObCluster:
        """The entry of ``cluster_id`` (a new one, without a password, if there is none) with
        ``change`` applied and its update time moved, in one transaction."""
        for attempt in (1, 2):  # a second go when another writer made the entry meanwhile
            try:
                now = utcnow()
                with self.store.write() as session:
                    rec = session.get(ObClusterRecord, cluster_id)
                    if rec is None:
                        rec = ObClusterRecord(
                            id=cluster_id, name=name, rs_list=rs_list, proxy_password="",
                            create_time=now,
                        )  # fmt: skip
                    change(rec)
                    rec.update_time = now
                    session.add(rec)
                    session.flush()
                    return _cluster(rec)
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def page(
        self,
        *,
        name: str | None = None,
        statuses: Sequence[str] = (),
        order_by: str = "id",
        descending: bool = False,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[list[ObCluster], int]:
        """OCP's list: ``name`` a case-insensitive keyword of the name, ``statuses`` any of
        ``STATUSES`` (another is a field error), ordered by a ``SORTABLE`` column; the page and
        the total."""
        statuses = members("status", statuses, STATUSES)
        if statuses and REGISTERED not in statuses:
            return [], 0  # every registered cluster is RUNNING
        where = []
        if name:
            pattern = "%" + re.sub(r"([\\%_])", r"\\\1", name.lower()) + "%"
            where.append(func.lower(col(ObClusterRecord.name)).like(pattern, escape="\\"))
        column = getattr(ObClusterRecord, order_by)
        key = column.desc() if descending else column.asc()
        query = select(ObClusterRecord).where(*where).order_by(key, col(ObClusterRecord.id))
        query = query.offset(offset).limit(limit) if limit is not None else query.offset(offset)
        count = select(func.count()).select_from(ObClusterRecord).where(*where)
        with self.store.read() as session:
            return [_cluster(r) for r in session.exec(query).all()], int(session.exec(count).one())

    def found(self, cluster_ids: Iterable[int]) -> dict[int, ObCluster]:
        """The registered ones of these clusters, by id."""
        ids = [i for i in set(cluster_ids) if isinstance(i, int) and 1 <= i <= MAX_ID]
        if not ids:
            return {}
        query = select(ObClusterRecord).where(col(ObClusterRecord.id).in_(ids))
        with self.store.read() as session:
            return {r.id: _cluster(r) for r in session.exec(query).all()}

    def named(self, name: str) -> list[ObCluster]:
        """Every registered cluster of this name (ids differ), lowest id first."""
        query = select(ObClusterRecord).where(ObClusterRecord.name == name)
        with self.store.read() as session:
            return [_cluster(r) for r in session.exec(query.order_by(col(ObClusterRecord.id)))]

    def list(self, *, offset: int = 0, limit: int | None = None) -> list[ObCluster]:
        query = select(ObClusterRecord).order_by(col(ObClusterRecord.id)).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self.store.read() as session:
            return [_cluster(r) for r in session.exec(query).all()]

    def count(self) -> int:
        with self.store.read() as session:
            return int(session.exec(select(func.count()).select_from(ObClusterRecord)).one())

    def find(self, cluster_id: int) -> ObCluster | None:
        if not isinstance(cluster_id, int) or not 1 <= cluster_id <= MAX_ID:
            return None
        with self.store.read() as session:
            rec = session.get(ObClusterRecord, cluster_id)
            return None if rec is None else _cluster(rec)

    def get(self, cluster_id: int) -> ObCluster:
        return found(self.find(cluster_id), ObClusterNotFound, cluster_id)

    def remove(self, cluster_id: int) -> None:
        found_now = self.find(cluster_id)
        name = found_now.name if found_now else None
        with _event(self.store, "UNREGISTER_OB_CLUSTER", name, {"obClusterId": cluster_id}) as done:
            done.resource_id = cluster_id if isinstance(cluster_id, int) else None
            self._remove(cluster_id)

    def _remove(self, cluster_id: int) -> None:
        with self.store.write() as session:
            rec = found(session.get(ObClusterRecord, cluster_id), ObClusterNotFound, cluster_id)
            session.delete(rec)


def _event(store: Any, event: str, name: str | None, info: dict) -> Any:
    """A registry change as an audit event (ours: OCP's registry is its metadb, which OCP fills
    by taking clusters over); never the proxyro password."""
    return recorded(store, Operation(event, "OB_CLUSTER_MANAGEMENT", "OB_CLUSTER"), name, info)


def proxy_password(ctx: StepContext, cluster_id: int) -> str | None:
    """The proxyro password, for the step that gives it to obproxy; "" when the cluster was
    registered without one (by its observers, ``register``), None when it is not registered.
    Not for display."""
    with ctx.reading() as session:
        rec = session.get(ObClusterRecord, cluster_id)
        if rec is None:
            return None
        return ctx.open_secret(rec.proxy_password) if rec.proxy_password else ""


def _cluster(rec: ObClusterRecord) -> ObCluster:
    return ObCluster(
        rec.id,
        rec.name,
        rec.rs_list,
        rec.config_url,
        as_utc(rec.create_time),  # type: ignore[arg-type]
        as_utc(rec.update_time),  # type: ignore[arg-type]
        roles=tuple(rec.rs_roles) if rec.rs_roles else None,
    )
