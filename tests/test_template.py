"""Templates are checked when defined and expanded as OCP does (parallelIdx, listMap splits)."""

from __future__ import annotations

import pytest

from engine import Context, Engine, Node, Split, SubtaskStatus, Template, TemplateError
from engine.errors import StepLoadError
from tests.helpers import S, split

BACKENDS = ["sqlite", "postgres"]


def test_unknown_upstream_is_rejected_at_definition() -> None:
    with pytest.raises(TemplateError, match=r"node 'B': unknown upstream 'Z'"):
        Template("t", [Node(S + "Record", "A"), Node(S + "Record", "B", upstreams=["Z"])])


def test_cycle_is_rejected_and_named() -> None:
    nodes = [
        Node(S + "Record", "A", upstreams=["C"]),
        Node(S + "Record", "B", upstreams=["A"]),
        Node(S + "Record", "C", upstreams=["B"]),
    ]
    with pytest.raises(TemplateError, match="has a cycle: ") as err:
        Template("t", nodes)
    assert all(name in str(err.value) for name in "ABC")


def test_self_loop_duplicate_and_bad_fields_are_rejected() -> None:
    with pytest.raises(TemplateError, match="cycle"):
        Template("t", [Node(S + "Record", "A", upstreams=["A"])])
    with pytest.raises(TemplateError, match="used twice"):
        Template("t", [Node(S + "Record", "A"), Node(S + "Record", "A")])
    with pytest.raises(TemplateError, match="timeout"):
        Template("t", [Node(S + "Record", "A", timeout=-1)])
    with pytest.raises(TemplateError, match="PARALLEL or SERIAL"):
        Split("hosts", "SIDEWAYS")  # type: ignore[arg-type]


def test_unloadable_step_is_refused_at_submit_with_nothing_written(engine: Engine) -> None:
    template = Template("t", [Node("tests.steps.NoSuchStep", "A")])
    with pytest.raises(StepLoadError, match="NoSuchStep"):
        engine.submit(template)
    assert engine.list() == []


def test_missing_split_key_is_refused_at_submit(engine: Engine) -> None:
    with pytest.raises(TemplateError, match=r"listMap\['hosts'\]"):
        engine.submit(split("PARALLEL"))
    assert engine.list() == []


def test_parallel_split(engine: Engine) -> None:
    task = engine.submit(split("PARALLEL"), {"hosts": ["h1", "h2", "h3"]})
    start, w0, w1, w2, end = task.subtasks
    assert [s.name for s in task.subtasks] == ["Start", "Work", "Work", "Work", "End"]
    assert [s.series_id for s in task.subtasks] == [0, 1, 2, 3, 4]
    assert [s.parallel_idx for s in task.subtasks] == [-1, 0, 1, 2, -1]
    assert [w.upstreams for w in (w0, w1, w2)] == [(start.id,)] * 3
    assert start.downstreams == (w0.id, w1.id, w2.id)
    assert end.upstreams == (w0.id, w1.id, w2.id)
    assert w1.context.parallel_idx == 1 and w1.to_ocp()["context"]["parallel"] is True
    final = engine.run(task.id, timeout=30)
    assert final.subtask(end.id).status is SubtaskStatus.SUCCESSFUL


def test_serial_split(engine: Engine) -> None:
    task = engine.submit(split("SERIAL"), {"hosts": ["h1", "h2", "h3"]})
    start, w0, w1, w2, end = task.subtasks
    assert [s.parallel_idx for s in task.subtasks] == [-1, 0, 1, 2, -1]
    assert w0.upstreams == (start.id,)
    assert w1.upstreams == (w0.id,) and w2.upstreams == (w1.id,)
    assert end.upstreams == (w2.id,)
    assert start.downstreams == (w0.id,)
    engine.run(task.id, timeout=30)
    from tests.steps import JOURNAL

    order = [sid for action, _, sid in JOURNAL if action == "execute"]
    assert order == [start.id, w0.id, w1.id, w2.id, end.id]


def host_chains() -> Template:
    """Prepare → (Check → Install per host) → Finish: the shape of an OBProxy install."""
    return Template(
        "chains",
        [
            Node(S + "Record", "Prepare"),
            Node(S + "Record", "Check", upstreams=["Prepare"], split=Split("hosts")),
            Node(S + "Record", "Install", upstreams=["Check"], split=Split("hosts")),
            Node(S + "Record", "Finish", upstreams=["Install"]),
        ],
    )


def test_same_key_splits_join_copy_to_copy() -> None:
    """Per-host chains: copy i of one split node feeds copy i of the next."""
    template = host_chains()
    plan = template.expand(Context.of({"hosts": ["a", "b"]}))
    by = {(p.node.name, p.parallel_idx): p for p in plan}
    assert by[("Install", 0)].upstreams == [by[("Check", 0)].series_id]
    assert by[("Install", 1)].upstreams == [by[("Check", 1)].series_id]
    assert by[("Finish", -1)].upstreams == [
        by[("Install", 0)].series_id,
        by[("Install", 1)].series_id,
    ]


def test_empty_split_is_bridged() -> None:
    """No hosts: the chain vanishes and Prepare feeds Finish directly (OCP's seed sample)."""
    template = host_chains()
    plan = template.expand(Context.of({"hosts": []}))
    assert [(p.node.name, p.series_id, p.upstreams) for p in plan] == [
        ("Prepare", 0, []),
        ("Finish", 1, [0]),
    ]


def test_series_id_follows_declaration_among_topological_ties() -> None:
    template = Template(
        "t",
        [
            Node(S + "Record", "Z-last", upstreams=["A"]),
            Node(S + "Record", "A"),
            Node(S + "Record", "M", upstreams=["A"]),
        ],
    )
    plan = template.expand(Context())
    assert [p.node.name for p in plan] == ["A", "Z-last", "M"]


def serial_chains() -> Template:
    """Prepare → (Stop → Start per host, SERIAL) → Finish: the shape of a rolling upgrade."""
    serial = Split("hosts", "SERIAL")
    return Template(
        "rolling",
        [
            Node(S + "Record", "Prepare"),
            Node(S + "Record", "Stop", upstreams=["Prepare"], split=serial),
            Node(S + "Record", "Start", upstreams=["Stop"], split=serial),
            Node(S + "Record", "Finish", upstreams=["Start"]),
        ],
    )


def test_serial_group_runs_host_after_host(engine: Engine) -> None:
    """A SERIAL chain of several nodes: host i's first step waits for host i-1's last step,
    so no two hosts are ever between Stop and Start at once."""
    plan = serial_chains().expand(Context.of({"hosts": ["a", "b", "c"]}))
    by = {(p.node.name, p.parallel_idx): p.series_id for p in plan}
    ups = {(p.node.name, p.parallel_idx): p.upstreams for p in plan}
    assert ups[("Stop", 0)] == [by[("Prepare", -1)]]
    assert ups[("Stop", 1)] == [by[("Start", 0)]]
    assert ups[("Stop", 2)] == [by[("Start", 1)]]
    assert ups[("Start", 1)] == [by[("Stop", 1)]]
    assert ups[("Finish", -1)] == [by[("Start", 2)]]
    task = engine.submit(serial_chains(), {"hosts": ["a", "b", "c"]})
    engine.run(task.id, timeout=30)
    from tests.steps import JOURNAL

    names = {s.id: (s.name, s.parallel_idx) for s in task.subtasks}
    order = [names[sid] for action, _, sid in JOURNAL if action == "execute"]
    assert order == [
        ("Prepare", -1),
        ("Stop", 0),
        ("Start", 0),
        ("Stop", 1),
        ("Start", 1),
        ("Stop", 2),
        ("Start", 2),
        ("Finish", -1),
    ]


def test_one_key_splits_one_way() -> None:
    with pytest.raises(TemplateError, match="must split the same way"):
        Template(
            "mixed",
            [
                Node(S + "Record", "A", split=Split("hosts", "SERIAL")),
                Node(S + "Record", "B", upstreams=["A"], split=Split("hosts")),
            ],
        )


def test_serial_runs_apart_are_chained_each_on_its_own() -> None:
    """Two SERIAL runs on one key with a plain node between them: each run goes host by host,
    and the plan has no cycle (one group across the barrier would wait on itself)."""
    import networkx as nx

    serial = Split("hosts", "SERIAL")
    template = Template(
        "apart",
        [
            Node(S + "Record", "Stop", split=serial),
            Node(S + "Record", "Barrier", upstreams=["Stop"]),
            Node(S + "Record", "Start", upstreams=["Barrier"], split=serial),
        ],
    )
    plan = template.expand(Context.of({"hosts": ["a", "b"]}))
    by = {(p.node.name, p.parallel_idx): p.series_id for p in plan}
    ups = {(p.node.name, p.parallel_idx): p.upstreams for p in plan}
    assert ups[("Stop", 1)] == [by[("Stop", 0)]]
    assert ups[("Barrier", -1)] == [by[("Stop", 1)]]
    assert ups[("Start", 1)] == [by[("Start", 0)]]
    graph = nx.DiGraph([(u, p.series_id) for p in plan for u in p.upstreams])
    assert nx.is_directed_acyclic_graph(graph)
