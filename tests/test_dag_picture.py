"""Pictures of a 3-host create's DAG (32 subtasks, 33 edges: Prepare obproxy install → OCP's
10-node chain per host → Finish node) as Mermaid, DOT, SVG and PNG,
made by ``ocptask task graph`` from a submitted task (the hosts are registered, never reached:
the picture reads records only)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from engine import Engine, PictureError, render_dag
from fixtures import install_request, register_ob_cluster
from tasks.obproxy import create_cluster

PACKAGES = Path(__file__).parent.parent / "fixtures" / "packages"
runner = CliRunner()
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def submitted(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("OCPTASK_PACKAGE_DIR", str(PACKAGES))
    with Engine(str(db_path)) as engine:
        ids = [
            engine.hosts.add(
                {
                    "name": f"h{i}",
                    "innerIpAddress": f"127.0.0.{60 + i}",
                    "username": "admin",
                    "password": "not-used",
                    "trustOnFirstUse": True,
                }
            ).id
            for i in range(3)
        ]
        register_ob_cluster(engine, "proxyro-Secret-4711")
        return create_cluster(engine, install_request(ids)).id


def graph(db_path: Path, task_id: int, *args: str) -> str:
    result = runner.invoke(app, ["task", "graph", str(task_id), *args, "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_mermaid_has_every_subtask_and_edge_in_host_columns(db_path: Path, submitted: int) -> None:
    text = graph(db_path, submitted)
    lines = text.splitlines()
    assert lines[0] == "flowchart TB"
    # A small parser of what we write: node lines, edge lines, subgraph blocks.
    nodes = {
        m.group(1): m.group(2)
        for m in map(re.compile(r'^\s+(s\d+)\["(.*)"\]:::\w+$').match, lines)
        if m
    }
    edges = [m.groups() for m in map(re.compile(r"^\s+(s\d+) --> (s\d+)$").match, lines) if m]
    assert len(nodes) == 32 and len(edges) == 33
    assert all(a in nodes and b in nodes for a, b in edges)
    assert sum(line.strip().startswith("subgraph copy") for line in lines) == 3
    assert lines.count("  end") == 3
    assert "Prepare obproxy install<br/>" in next(iter(nodes.values()))
    assert all(" READY" in label or " PENDING" in label for label in nodes.values())


def test_svg_and_png_through_graphviz(db_path: Path, submitted: int, tmp_path: Path) -> None:
    svg = ET.fromstring(graph(db_path, submitted, "--format", "svg"))
    groups = [g.get("class") for g in svg.iter(f"{SVG}g")]
    assert groups.count("node") == 32 and groups.count("edge") == 33
    assert groups.count("cluster") == 3
    texts = [t.text or "" for t in svg.iter(f"{SVG}text")]
    assert texts.count("Start obproxy process") == 3
    assert texts.count("Prepare create obproxy") == 3
    assert texts.count("Refresh ocp agent config") == 3
    png = tmp_path / "dag.png"
    result = runner.invoke(
        app, ["task", "graph", str(submitted), "-f", "png", "-o", str(png), "--db", str(db_path)]
    )
    assert result.exit_code == 0, result.output
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 300 and height > 300


def test_dot_and_refusals(db_path: Path, submitted: int) -> None:
    dot = graph(db_path, submitted, "--format", "dot")
    assert dot.startswith(f"digraph task_{submitted} {{") and dot.count(" -> ") == 33
    with Engine(str(db_path)) as engine:
        with pytest.raises(PictureError, match="format must be one of"):
            render_dag(engine.get(submitted), "gif")
    result = runner.invoke(
        app, ["task", "graph", str(submitted), "-f", "png", "--db", str(db_path)]
    )
    assert result.exit_code == 2 and "needs --output" in result.stderr
    missing = runner.invoke(app, ["task", "graph", "4242", "--db", str(db_path)])
    assert missing.exit_code == 3


def test_offline_picture_has_host_columns_around_the_joins(db_path: Path) -> None:
    """OCP's 8-node "Offline obproxy" over 3 hosts: its three per-host nodes in each host's
    column, Wait node, Delete obproxy info and Unreserve host once, between them."""
    from tasks.obproxy.templates import OFFLINE_OBPROXY

    with Engine(str(db_path)) as engine:
        hosts = {"listMap": {"host_ids": ["1", "2", "3"]}}
        task = engine.submit(OFFLINE_OBPROXY, hosts, payload={"cluster_id": 1, "server_ids": []})
    lines = graph(db_path, task.id).splitlines()
    name = re.compile(r'^\s+s\d+\["(.*?)<br/>')
    nodes = [m.group(1) for m in map(name.match, lines) if m]
    edges = [line for line in lines if re.match(r"^\s+s\d+ --> s\d+$", line)]
    assert len(nodes) == 14 and len(edges) == 19
    once = ["Start node", "Wait node", "Delete obproxy info", "Unreserve host", "Finish node"]
    assert all(nodes.count(name) == 1 for name in once)
    starts = [i for i, line in enumerate(lines) if line.startswith("  subgraph copy")]
    assert [lines[i] for i in starts] == [
        f'  subgraph copy{i}["#{i + 1} · host {i + 1}"]' for i in range(3)
    ]
    for start in starts:
        column = lines[start + 1 : lines.index("  end", start)]
        assert [m.group(1) for m in map(name.match, column) if m] == [
            "Prepare offline obproxy",
            "Stop and uninstall obproxy",
            "Offline obproxy exporter",
        ]
