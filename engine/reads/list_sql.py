"""The one rule for task lists, its second half: the SQL that finds a list's tasks through
indexes, its pages, and its counts (``task_lists`` says what a list asks for).

Standard library only: the Engine runs this SQL through SQLAlchemy (``Engine.page``), the CLI's
quick reads through sqlite3 (``sqlite_reader``); both bind the same ``:named`` parameters and
hand ``list_page`` a ``run(sql, params) -> rows`` of their own.

No list reads the history it does not show (issue 25):
- a host or a cluster is a range of ``task_subject``'s index, a status, type or name one of
  ``task_instance``'s; the page walks one such range in id order and stops when it is full;
- a fuzzy name (the task's, a cluster's) is first matched against the distinct names (few: one
  index seek each, a loose index scan), then looked up as those exact names;
- ``totalElements`` counts index entries of the matching tasks, never rows, and on SQLite a
  server keeps it between reads (``Counts``);
- a page past the middle is read from the other end (the last page costs what the first does).
A page in the middle of a long list still steps over ``offset`` index entries (O(offset), over a
covering index); lists ordered by something other than id sort their matches (O(matches)).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC
from typing import Any

from engine.concerns import HOST, OB_CLUSTER
from engine.db.row_ids import is_row_id

from .task_lists import TaskQuery, fuzzy

MAX_NAMES = 1000
"""Distinct names a fuzzy filter looks through before it falls back to matching each row's
name: names are few when they name kinds of task (ours do), not when they are made per task."""
MAX_RANGES = 32
"""Exact names (or statuses) a page merges range by range; more are left to the planner."""

Run = Callable[[str, dict[str, Any]], Sequence[Sequence[Any]]]
"""Runs one SELECT with ``:named`` parameters in the caller's transaction; answers its rows."""

# The distinct values of an indexed column, one index seek each (a loose index scan): SQLite and
# PostgreSQL both answer min() over an index range by its first entry.
_DISTINCT = (
    "WITH RECURSIVE v(x) AS (SELECT (SELECT min({col}) FROM {table}{where}) UNION ALL "
    "SELECT (SELECT min({col}) FROM {table} WHERE {more}{col} > v.x) FROM v WHERE v.x IS NOT NULL)"
    " SELECT x FROM v WHERE x IS NOT NULL"
)
TASK_NAMES = _DISTINCT.format(col="name", table="task_instance", where="", more="")
CLUSTER_NAMES = _DISTINCT.format(
    col="name", table="task_subject", where=" WHERE kind = :kind", more="kind = :kind AND "
)


@dataclass(frozen=True)
class _Range:
    """Ids in id order from one index range: ``task_instance``'s (``on_subject`` False) or
    ``task_subject``'s; ``distinct`` where a task may have two rows in it."""

    test: str
    on_subject: bool = False
    distinct: bool = False

    def rows(self, others: Sequence[str]) -> tuple[str, str]:
        """(SELECT of its ids, the column they come from) with the other conditions."""
        if not self.on_subject:
            return f"SELECT t.id AS id FROM task_instance t WHERE {self.test}{_and(others)}", "t.id"
        pick = "DISTINCT s.task_id" if self.distinct else "s.task_id"
        if not others:  # the relation alone: its rows are written with their tasks
            return f"SELECT {pick} AS id FROM task_subject s WHERE {self.test}", "s.task_id"
        join = "FROM task_subject s CROSS JOIN task_instance t WHERE t.id = s.task_id AND "
        return f"SELECT {pick} AS id {join}{self.test}{_and(others)}", "s.task_id"


@dataclass
class _Sql:
    """Conditions on ``task_instance t``, and the ranges of one of them a page may walk in id
    order (``driver``)."""

    conds: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    ranges: list[_Range] = field(default_factory=list)
    driver: str | None = None

    def bind(self, prefix: str, values: Sequence[Any]) -> str:
        marks = []
        for i, value in enumerate(values):
            self.params[f"{prefix}{i}"] = value
            marks.append(f":{prefix}{i}")
        return ", ".join(marks)

    @property
    def others(self) -> list[str]:
        return [c for c in self.conds if c != self.driver]


def _subject(kind: str, test: str) -> str:
    return (
        f"EXISTS (SELECT 1 FROM task_subject s WHERE s.task_id = t.id AND s.kind = '{kind}' "
        f"AND {test})"
    )


def _build(query: TaskQuery, run: Run, dialect: str) -> _Sql | None:
    """The SQL pieces of ``query``, or None when nothing can match: a fuzzy name that matches no
    name at all, or a host or cluster id that no row of ours can have (``row_ids``)."""
    if any(i is not None and not is_row_id(i) for i in (query.host_id, query.cluster_id)):
        return None
    sql = _Sql()
    candidates: list[tuple[str, list[_Range]]] = []  # (condition, the ranges it is)
    if query.host_id is not None:  # one row of a task at most (``concerns.subjects``)
        sql.params["host"] = query.host_id
        test = f"s.kind = '{HOST}' AND s.key = :host"
        candidates.append((_subject(HOST, "s.key = :host"), [_Range(test, True)]))
    if query.cluster_id is not None:  # as a host, one row of a task
        sql.params["cluster"] = query.cluster_id
        test = f"s.kind = '{OB_CLUSTER}' AND s.key = :cluster"
        cond = _subject(OB_CLUSTER, "s.key = :cluster")
        candidates.append((cond, [_Range(test, True)]))
    if query.cluster_name:
        names = _names(run, CLUSTER_NAMES, {"kind": OB_CLUSTER}, query.cluster_name)
        if names is None:  # too many names to list: each row's name matched (a scan)
            sql.params["ckw"] = _pattern(query.cluster_name)
            candidates.append((_subject(OB_CLUSTER, f"lower(s.name) {_LIKE}ckw {_ESC}"), []))
        elif not names:
            return None
        else:
            marks = sql.bind("cname", names)
            ranges = [
                _Range(f"s.kind = '{OB_CLUSTER}' AND s.name = :cname{i}", True, True)
                for i in range(len(names))
            ]
            candidates.append((_subject(OB_CLUSTER, f"s.name IN ({marks})"), ranges))
    if query.name:
        names = _names(run, TASK_NAMES, {}, query.name)
        if names is None:
            sql.params["kw"] = _pattern(query.name)
            candidates.append((f"lower(t.name) {_LIKE}kw {_ESC}", []))
        elif not names:
            return None
        else:
            marks = sql.bind("name", names)
            ranges = [_Range(f"t.name = :name{i}") for i in range(len(names))]
            candidates.append((f"t.name IN ({marks})", ranges))
    if query.statuses:
        marks = sql.bind("status", query.statuses)
        ranges = [_Range(f"t.status = :status{i}") for i in range(len(query.statuses))]
        candidates.append((f"t.status IN ({marks})", ranges))
    if query.task_type is not None:
        sql.params["type"] = query.task_type
        candidates.append(("t.type = :type", [_Range("t.type = :type")]))
    if query.after is not None:
        after = query.after.astimezone(UTC)
        # As each backend's DateTime column holds it: SQLite's text, without the zone.
        sql.params["after"] = (
            after.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
            if dialect == "sqlite"
            else after
        )
        candidates.append(("t.create_time >= :after", []))
    sql.conds = [cond for cond, _ in candidates]
    for cond, ranges in candidates:  # the first that can be walked, in the order above
        if ranges and len(ranges) <= MAX_RANGES:
            sql.driver, sql.ranges = cond, ranges
            break
    return sql


_LIKE = "LIKE '%' || :"
_ESC = "|| '%' ESCAPE '/'"


def _names(run: Run, distinct: str, params: dict[str, Any], keyword: str) -> list[str] | None:
    """The distinct names that hold ``keyword``, or None when there are more than
    ``MAX_NAMES`` names to look through (names made per task, not per kind of task)."""
    found = [r[0] for r in run(f"{distinct} LIMIT {MAX_NAMES + 1}", params)]
    return None if len(found) > MAX_NAMES else fuzzy(keyword, found)


def _pattern(keyword: str) -> str:
    """``keyword`` for LIKE, lower case, its wildcards escaped with "/"."""
    return keyword.lower().replace("/", "//").replace("%", "/%").replace("_", "/_")


def _and(conds: Sequence[str]) -> str:
    return "".join(f" AND {c}" for c in conds)


def _where(conds: Sequence[str]) -> str:
    return " WHERE " + " AND ".join(conds) if conds else ""


def _ranges_sql(sql: _Sql, way: str, limit: str | None) -> str:
    """The ids of every range (each limited to ``limit`` when given), merged without repeats."""
    parts = []
    for i, one in enumerate(sql.ranges):
        rows, column = one.rows(sql.others)
        if limit is not None:
            rows += f" ORDER BY {column} {way} LIMIT {limit}"
        parts.append(f"SELECT id FROM ({rows}) AS r{i}")
    return " UNION ".join(parts)


def _count_sql(sql: _Sql) -> str:
    """How many match: index entries counted, never rows read."""
    if not sql.ranges or not sql.ranges[0].on_subject:  # the planner's pick of the indexes
        return f"SELECT count(*) FROM task_instance t{_where(sql.conds)}"
    if len(sql.ranges) == 1:
        return f"SELECT count(*) FROM ({sql.ranges[0].rows(sql.others)[0]}) AS c"
    return f"SELECT count(*) FROM ({_ranges_sql(sql, 'DESC', None)}) AS c"


def _page_sql(query: TaskQuery, sql: _Sql, descending: bool) -> str:
    way = "DESC" if descending else "ASC"
    if query.order_by == "id" and len(sql.ranges) == 1:  # the range's own index order
        rows, column = sql.ranges[0].rows(sql.others)
        return f"{rows} ORDER BY {column} {way} LIMIT :limit OFFSET :offset"
    if query.order_by == "id" and sql.ranges:
        merged = _ranges_sql(sql, way, ":reach")
        return f"{merged} ORDER BY id {way} LIMIT :limit OFFSET :offset"
    order = f"t.id {way}" if query.order_by == "id" else f"t.{query.order_by} {way}, t.id {way}"
    rows = f"SELECT t.id FROM task_instance t{_where(sql.conds)}"
    return f"{rows} ORDER BY {order} LIMIT :limit OFFSET :offset"


def _since(sql: _Sql) -> _Sql:
    """``sql`` narrowed to the tasks after ``:since`` (an id)."""
    ranges = [
        replace(r, test=f"{r.test} AND {'s.task_id' if r.on_subject else 't.id'} > :since")
        for r in sql.ranges
    ]
    narrowed = [f"{c} AND t.id > :since" if c == sql.driver else c for c in sql.conds]
    driver = f"{sql.driver} AND t.id > :since" if sql.driver else None
    if not sql.ranges:
        narrowed.append("t.id > :since")
    return _Sql(narrowed, sql.params, ranges, driver)


class Counts:
    """Counts of task lists kept between reads, each brought up to date by counting only the
    tasks added since (a range of the same indexes), so a list's ``totalElements`` costs what
    its new tasks do, not what its history does.

    Only where that is exact: on SQLite, whose writers commit one at a time so no task with a
    lower id can appear later; for lists without a status filter (the only thing of a task a
    list filters on that changes); and until a purge (``engine.db.purges``) removes tasks.
    Elsewhere a list's count is its matches' index entries, counted in full."""

    MARKS = "SELECT (SELECT max(id) FROM task_instance), (SELECT max(id) FROM task_purge)"
    SIZE = 256

    def __init__(self) -> None:
        self._kept: OrderedDict[tuple[Any, ...], tuple[int, int | None, int]] = OrderedDict()
        self._lock = threading.Lock()

    def total(self, run: Run, query: TaskQuery, sql: _Sql, dialect: str) -> int:
        if dialect != "sqlite" or query.statuses:
            return _counted(run, sql)
        key = (query.task_type, query.name, query.host_id, query.cluster_id,
               query.cluster_name, query.after)  # fmt: skip
        newest, purge = run(self.MARKS, {})[0]
        with self._lock:
            kept = self._kept.get(key)
        if kept is not None and kept[1] == purge and kept[0] <= (newest or 0):
            since, _, known = kept
            total = known + (_counted(run, _since(sql), since) if since != newest else 0)
        else:
            total = _counted(run, sql)
        with self._lock:
            self._kept[key] = (newest or 0, purge, total)
            self._kept.move_to_end(key)
            while len(self._kept) > self.SIZE:
                self._kept.popitem(last=False)
        return total


def _counted(run: Run, sql: _Sql, since: int | None = None) -> int:
    params = sql.params if since is None else {**sql.params, "since": since}
    return int(run(_count_sql(sql), params)[0][0])


def list_page(
    run: Run,
    query: TaskQuery,
    *,
    offset: int = 0,
    limit: int,
    count: bool = True,
    dialect: str = "sqlite",
    counts: Counts | None = None,
) -> tuple[list[int], int | None]:
    """The ids of one page, in the list's order, and how many tasks match in all (None without
    ``count``; kept between reads in ``counts`` where that is exact). Run in one transaction,
    the count and the page agree."""
    sql = _build(query, run, dialect)
    if sql is None:
        return [], 0 if count else None
    total = None
    if count:
        total = _counted(run, sql) if counts is None else counts.total(run, query, sql, dialect)
    descending = query.descending
    if total is not None:
        if offset >= total:
            return [], total
        if (
            offset and offset + limit > total - offset
        ):  # past the middle: read it from the other end
            offset, limit = max(total - offset - limit, 0), min(limit, total - offset)
            descending = not descending
    params = {**sql.params, "limit": limit, "offset": offset, "reach": offset + limit}
    ids = [row[0] for row in run(_page_sql(query, sql, descending), params)]
    return (ids if descending == query.descending else ids[::-1]), total


def all_ids(run: Run, query: TaskQuery, dialect: str = "sqlite") -> list[int]:
    """Every matching id in the list's order: the candidates of a ``matching`` scan."""
    sql = _build(query, run, dialect)
    if sql is None:
        return []
    page = _page_sql(query, sql, query.descending)
    big = 2**62
    return [r[0] for r in run(page, {**sql.params, "limit": big, "offset": 0, "reach": big})]
