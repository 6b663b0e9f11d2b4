"""Pictures of a task's DAG: Graphviz DOT (and through it SVG or PNG) and Mermaid text.

One renderer for every surface (the CLI's ``task graph`` now, the web console later). Nodes
carry their name, id and status in words (colour is never the only sign); the copies of a
split (one per host) are drawn in columns, one cluster per ``parallelIdx``; edges follow the
records' upstreams. SVG and PNG need Graphviz's ``dot`` program (Debian package graphviz).
"""

from __future__ import annotations

from collections import defaultdict

from .errors import OcpTaskError
from .task import Subtask, Task

FORMATS = ("mermaid", "dot", "svg", "png")
# Fill colours by status: light enough for black text; the status is also in each label.
COLOURS = {
    "PENDING": "#e6e6e6",
    "READY": "#fff2a8",
    "RUNNING": "#9fd3ff",
    "CANCELING": "#ffc98a",
    "SUCCESSFUL": "#a6e3a1",
    "FAILED": "#f4a0a0",
}


class PictureError(OcpTaskError):
    """The picture cannot be made here (an unknown format, or Graphviz missing)."""


def _copies(task: Task) -> tuple[list[Subtask], dict[int, list[Subtask]]]:
    """The subtasks outside any split, and each split copy's subtasks by ``parallelIdx``."""
    single, copies = [], defaultdict(list)
    for sub in sorted(task.subtasks, key=lambda s: s.id):
        if sub.parallel_idx < 0:
            single.append(sub)
        else:
            copies[sub.parallel_idx].append(sub)
    return single, dict(sorted(copies.items()))


def _column(idx: int, subs: list[Subtask]) -> str:
    """A copy's title: its index, and the host it works on when the split is over hosts."""
    host = subs[0].item("host_ids") if subs else None
    return f"#{idx + 1}" + (f" · host {host}" if host is not None else "")


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def to_dot(task: Task) -> str:
    single, copies = _copies(task)

    def node(sub: Subtask) -> str:
        label = _dot_text(f"{sub.name}\n#{sub.id} {sub.status.value}")
        fill = COLOURS.get(sub.status.value, "#ffffff")
        return f'  s{sub.id} [id="s{sub.id}", label="{label}", fillcolor="{fill}"];'

    lines = [
        f"digraph task_{task.id} {{",
        f'  label="{_dot_text(f"task {task.id}: {task.name} ({task.status.value})")}";',
        '  labelloc="t"; rankdir="TB"; newrank=true; fontname="Helvetica";',
        '  node [shape="box", style="rounded,filled", fontname="Helvetica", fontsize=10];',
        '  edge [color="#555555"];',
    ]
    lines += [node(sub) for sub in single]
    for idx, subs in copies.items():
        lines.append(f"  subgraph cluster_{idx} {{")
        lines.append(f'    label="{_dot_text(_column(idx, subs))}"; style="dashed";')
        lines += ["  " + node(sub) for sub in subs]
        lines.append("  }")
    for sub in sorted(task.subtasks, key=lambda s: s.id):
        lines += [f"  s{up} -> s{sub.id};" for up in sub.upstreams]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def to_mermaid(task: Task) -> str:
    single, copies = _copies(task)

    def node(sub: Subtask) -> str:
        label = f"{_mermaid_text(sub.name)}<br/>#{sub.id} {sub.status.value}"
        return f'  s{sub.id}["{label}"]:::{sub.status.value}'

    lines = ["flowchart TB"]
    lines += [node(sub) for sub in single]
    for idx, subs in copies.items():
        lines.append(f'  subgraph copy{idx}["{_mermaid_text(_column(idx, subs))}"]')
        lines += ["  " + node(sub) for sub in subs]
        lines.append("  end")
    for sub in sorted(task.subtasks, key=lambda s: s.id):
        lines += [f"  s{up} --> s{sub.id}" for up in sub.upstreams]
    lines += [f"  classDef {status} fill:{colour}" for status, colour in COLOURS.items()]
    return "\n".join(lines) + "\n"


def render(task: Task, fmt: str) -> bytes:
    """The task's DAG in ``fmt`` (one of FORMATS)."""
    if fmt == "mermaid":
        return to_mermaid(task).encode()
    if fmt == "dot":
        return to_dot(task).encode()
    if fmt not in FORMATS:
        raise PictureError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    import graphviz

    try:
        return graphviz.Source(to_dot(task)).pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise PictureError(
            f"{fmt.upper()} needs Graphviz's dot program (Debian package graphviz); "
            "--format dot or mermaid need nothing"
        ) from None
