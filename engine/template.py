"""Task templates: a declarative list of nodes, checked when defined, expanded when submitted.

Expansion follows OCP: a node with a split key becomes one subtask per element of
``context.listMap[key]`` (``parallelIdx`` = the element's index). Two nodes split on the same key
are joined copy-to-copy, which is what makes "one install chain per host" a single template. A
split over an empty list yields no subtasks and its neighbours are joined around it, so the
"Install obproxy" template with no hosts is exactly OCP's Prepare → Finish.

With ``SERIAL``, the nodes split on one key run one copy after another *as a group*: copy i of
the group's first nodes waits for copy i-1 of its last nodes, so a chain of steps per host runs
host by host (a rolling upgrade), never the first step of every host at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import networkx as nx

from .context import Context
from .enums import SplitMethod
from .errors import TemplateError


@dataclass(frozen=True)
class Split:
    key: str
    method: SplitMethod = SplitMethod.PARALLEL
    # False: a task without listMap[key] gets no copies (rather than being refused).
    required: bool = True

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "method", SplitMethod(self.method))
        except ValueError:
            raise TemplateError(
                f"split method must be PARALLEL or SERIAL, not {self.method!r}"
            ) from None


@dataclass(frozen=True)
class Node:
    """One template node. ``step`` is a Step subclass or its dotted class path."""

    step: type | str
    name: str
    description: str | None = None
    timeout: int = 300
    prohibit_rollback: bool = False
    upstreams: Sequence[str] = ()
    split: Split | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "upstreams", tuple(self.upstreams))

    @property
    def class_name(self) -> str:
        if isinstance(self.step, str):
            return self.step
        return f"{self.step.__module__}.{self.step.__qualname__}"


@dataclass
class PlannedSubtask:
    """A subtask as expansion plans it; ids are seriesIds until the store assigns real ones."""

    series_id: int
    node: Node
    parallel_idx: int
    upstreams: list[int] = field(default_factory=list)
    downstreams: list[int] = field(default_factory=list)


class Template:
    """A named DAG of nodes. Raises TemplateError at definition for any structural mistake."""

    def __init__(
        self, name: str, nodes: Iterable[Node], *, prohibit_rollback: bool = False
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise TemplateError("template name must be a non-empty string")
        self.name = name
        self.nodes = list(nodes)
        self.prohibit_rollback = prohibit_rollback
        self._graph = self._check()
        rank = {node.name: i for i, node in enumerate(self.nodes)}
        self._order = list(nx.lexicographical_topological_sort(self._graph, key=rank.__getitem__))

    def _check(self) -> nx.DiGraph:
        graph = nx.DiGraph()
        methods: dict[str, SplitMethod] = {}
        for node in self.nodes:
            where = f"template {self.name!r}, node {node.name!r}"
            if not isinstance(node, Node):
                raise TemplateError(f"template {self.name!r}: {node!r} is not a Node")
            if not node.name or not node.name.strip():
                raise TemplateError(f"template {self.name!r}: a node has an empty name")
            if node.name in graph:
                raise TemplateError(f"{where}: the name is used twice")
            if not isinstance(node.timeout, int) or node.timeout < 0:
                raise TemplateError(f"{where}: timeout must be a whole number of seconds >= 0")
            if "." not in node.class_name:
                raise TemplateError(f"{where}: step {node.class_name!r} is not a dotted class path")
            if node.split is not None and not node.split.key:
                raise TemplateError(f"{where}: split key is empty")
            if node.split is not None:
                method = methods.setdefault(node.split.key, node.split.method)
                if method is not node.split.method:
                    raise TemplateError(
                        f"{where}: every node split on {node.split.key!r} must split the same "
                        f"way ({method.value}), not {node.split.method.value}"
                    )
            graph.add_node(node.name, node=node)
        for node in self.nodes:
            for upstream in node.upstreams:
                if upstream not in graph:
                    raise TemplateError(
                        f"template {self.name!r}, node {node.name!r}: unknown upstream {upstream!r}"
                    )
                graph.add_edge(upstream, node.name)
        try:
            cycle = nx.find_cycle(graph)
        except nx.NetworkXNoCycle:
            return graph
        path = " -> ".join([edge[0] for edge in cycle] + [cycle[0][0]])
        raise TemplateError(f"template {self.name!r} has a cycle: {path}")

    def expand(self, context: Context) -> list[PlannedSubtask]:
        """Plan the subtasks for one task. seriesId is the 0-based creation counter."""
        planned: list[PlannedSubtask] = []
        copies: dict[str, list[PlannedSubtask]] = {}
        exits: dict[str, list[PlannedSubtask]] = {}
        for name in self._order:
            node: Node = self._graph.nodes[name]["node"]
            count = 1
            if node.split is not None:
                if node.split.key not in context.list_map and node.split.required:
                    raise TemplateError(
                        f"template {self.name!r}, node {name!r} splits on "
                        f"listMap[{node.split.key!r}], which the task arguments do not provide"
                    )
                count = len(context.list_map.get(node.split.key, ()))
            mine = []
            for idx in range(count):
                sub = PlannedSubtask(len(planned), node, idx if node.split else -1)
                planned.append(sub)
                mine.append(sub)
            copies[name] = mine
            serial = node.split is not None and node.split.method is SplitMethod.SERIAL
            for idx, sub in enumerate(mine):
                ups: list[PlannedSubtask] = []
                for upstream in node.upstreams:
                    if _aligned(self._graph.nodes[upstream]["node"], node):
                        ups.append(copies[upstream][idx])
                    elif not (serial and idx > 0):
                        ups.extend(exits[upstream])
                _link(ups, sub)
            if mine:
                exits[name] = mine[-1:] if serial else mine
            else:
                bridged = [sub for up in node.upstreams for sub in exits[up]]
                exits[name] = _unique(bridged)
        for entry, sink in self._serial_links():
            for idx in range(1, len(copies[entry])):
                _link([copies[sink][idx - 1]], copies[entry][idx])
        return planned

    def _serial_links(self) -> list[tuple[str, str]]:
        """(entry, sink) node names of each SERIAL group: copy i of every entry (no upstream
        in the group) waits for copy i-1 of every sink (no downstream in the group). A group
        is a connected run of SERIAL nodes on one key; two runs apart (a node between them
        that is not split) are chained each on its own, so no cycle can arise across them."""
        serial = [
            name
            for name in self._order
            if (node := self._graph.nodes[name]["node"]).split is not None
            and node.split.method is SplitMethod.SERIAL
        ]
        runs = self._graph.subgraph(serial).copy()
        runs.remove_edges_from(
            [
                (a, b)
                for a, b in runs.edges
                if not _aligned(runs.nodes[a]["node"], runs.nodes[b]["node"])
            ]
        )
        links = []
        for group in nx.weakly_connected_components(runs):
            entries = [n for n in group if not any(u in group for u in runs.predecessors(n))]
            sinks = [n for n in group if not any(d in group for d in runs.successors(n))]
            links += [(entry, sink) for entry in sorted(entries) for sink in sorted(sinks)]
        return links


def _link(upstreams: list[PlannedSubtask], sub: PlannedSubtask) -> None:
    for up in _unique(upstreams):
        sub.upstreams.append(up.series_id)
        up.downstreams.append(sub.series_id)


def _aligned(upstream: Node, downstream: Node) -> bool:
    return (
        upstream.split is not None
        and downstream.split is not None
        and upstream.split.key == downstream.split.key
    )


def _unique(items: list[PlannedSubtask]) -> list[PlannedSubtask]:
    seen: dict[int, PlannedSubtask] = {}
    for item in items:
        seen.setdefault(item.series_id, item)
    return list(seen.values())
