"""Turns the figures ``bench/report.py`` gathered into REPORT.md and its PNG plots: every
target of issue 13 beside what was measured, a line of what each figure means, and the
benchmarks' own output as printed."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no screen here: draw to files
import matplotlib.pyplot as plt

from bench.history_report import history_section, history_targets

Target = tuple[str, str, str, bool | None, str]  # figure, measured, target, holds, meaning


def _verdict(holds: bool | None) -> str:
    return {True: "holds", False: "**MISSED**", None: "not measured"}[holds]


def _median(values: list[float]) -> float:
    return statistics.median(values)


_FAILED = {  # a benchmark that did not run: its targets are said not to be measured
    "engine": ["engine per node, <= 0.5 ms"],
    "prefect": ["Prefect 3 / ocptask, >= 20x"],
    "fanout": ["own CPU per host, <= 60 ms", "16 hosts against the CPU limit, <= 1.15",
               "64 hosts: scale, RSS, leaks", "pooled SSH command, <= 3 ms"],
    "ansible": ["16-host create, ocptask / Ansible, <= 0.1"],
    "inflight": ["3 daemons / 1 daemon nodes per second, >= 1.0",
                 "in flight: double runs 0, lost 0"],
}  # fmt: skip


def targets(f: dict[str, Any]) -> list[Target]:
    rows: list[Target] = [
        (name, "-", "", None, "the benchmark did not run: its output is at the end")
        for key, names in _FAILED.items()
        if f.get(key) is None
        for name in names
    ]
    rows += history_targets(f.get("history"))
    engine, prefect, fanout, ansible = (
        f.get("engine"),
        f.get("prefect"),
        f.get("fanout"),
        f.get("ansible"),
    )
    target_ms = (engine or {}).get("target_ms", 0.5)
    for r in (engine or {}).get("rows", []):
        if r.get("database", "SQLite").startswith("PostgreSQL"):
            continue  # shown beside SQLite's, without a target
        rows.append(
            (
                f"engine, {r['shape']}, per node ({r['nodes']} no-op nodes, SQLite)",
                f"{r['run_ms']:.2f} ms",
                f"≤ {target_ms} ms",
                r["run_ms"] <= target_ms,
                "what the engine adds to each subtask: its records, state changes and hand-offs",
            )
        )
    for r in (prefect or {}).get("rows", []):
        if "prefect_ms" in r:
            ratio = r["prefect_ms"] / r["ocptask_ms"]
            rows.append(
                (
                    f"Prefect 3 / ocptask, {r['shape']}, {prefect['nodes']} nodes",
                    f"{ratio:.1f}x",
                    "≥ 20x",
                    ratio >= 20,
                    "how much lighter a node of ours is than the same node in Prefect",
                )
            )
    if prefect and "prefect_missing" in prefect:
        rows.append(("Prefect 3 / ocptask", "-", "≥ 20x", None, prefect["prefect_missing"]))
    by_hosts = {r["hosts"]: r for r in (fanout or {}).get("rows", [])}
    seconds = (ansible or {}).get("seconds", {})
    if "16" in seconds.get("ansible", {}) and "16" in seconds.get("ocptask", {}):
        ratio = _median(seconds["ocptask"]["16"]) / _median(seconds["ansible"]["16"])
        rows.append(
            (
                "16-host create, ocptask / Ansible",
                f"{ratio:.3f}",
                "≤ 0.1",
                ratio <= 0.1,
                "the same install on the same hosts, wall time",
            )
        )
    elif ansible is not None:
        rows.append(
            (
                "16-host create, ocptask / Ansible",
                "-",
                "≤ 0.1",
                None,
                ansible.get("ansible_missing", "no 16-host run"),
            )
        )
    if 16 in by_hosts:
        r = by_hosts[16]
        rows.append(
            (
                "ocptask's own CPU per host chain (16 hosts)",
                f"{r['own_ms_per_host']:.0f} ms",
                "≤ 60 ms",
                r["own_ms_per_host"] <= 60,
                "the controller's cost of one host's 8 steps: SSH, SQL, records, logs",
            )
        )
        rows.append(
            (
                "16 hosts: wall / (machine CPU s / cores)",
                f"{r['cpu_limit_ratio']:.2f}",
                "≤ 1.15",
                r["cpu_limit_ratio"] <= 1.15,
                "1.0: the fan-out kept every core busy and waited on nothing else",
            )
        )
    if 64 in by_hosts and 16 in by_hosts:
        r, base = by_hosts[64], by_hosts[16]
        ratio = r["wall_per_host"] / base["wall_per_host"]
        rows.append(
            (
                "64 hosts: per-host wall / 16 hosts'",
                f"{ratio:.2f}",
                "≤ 1.5",
                ratio <= 1.5,
                "the fan-out scales: a host costs no more in a bigger create",
            )
        )
        rows.append(
            (
                "64 hosts: controller peak RSS",
                f"{r['peak_rss_mb']:.0f} MB",
                "≤ 200 MB",
                r["peak_rss_mb"] <= 200,
                "memory of the process running the create",
            )
        )
        leak = r["fd_leak"] > 0 or r["ssh_leak"] > 0
        rows.append(
            (
                "64 hosts: fds / SSH connections left after the engine closed",
                f"{r['fd_leak']:+d} / {r['ssh_leak']:+d}",
                "+0 / +0",
                not leak,
                f"before → after: fds {r['fds_before']:.0f} → {r['fds_after']:.0f}, "
                f"SSH {r['ssh_before']:.0f} → {r['ssh_after']:.0f} "
                f"({r['ssh_during']:.0f} pooled at the task's end)",
            )
        )
    if fanout:
        ms = fanout["command_ms"]["median"]
        rows.append(
            (
                "one command on a pooled SSH connection, median",
                f"{ms:.2f} ms",
                "≤ 3 ms",
                ms <= 3,
                f"a warm connection's round trip for `true` (p95 "
                f"{fanout['command_ms']['p95']:.2f} ms); a bare exec of `true` on the same "
                "connection, without the wrapper that makes a command's processes killable: "
                f"{fanout['command_ms'].get('bare', float('nan')):.2f} ms, sshd's floor here",
            )
        )
    return rows + _in_flight_targets(f.get("inflight"))


def _in_flight_targets(flight: dict[str, Any] | None) -> list[Target]:
    if flight is None:
        return []
    if "missing" in flight:
        return [(name, "-", "", None, flight["missing"]) for name in _FAILED["inflight"]]
    rows: list[Target] = []
    setups, ratio = flight["setups"], flight.get("ratio")
    load = f"{flight['tasks']} tasks of {flight['nodes_per_task']} no-op nodes, PostgreSQL"
    if ratio is not None:
        many, one = setups[-1]["daemons"], setups[0]["daemons"]
        rows.append(
            (
                f"{many} daemons / {one} daemon, nodes per second ({load})",
                f"{ratio:.2f}",
                "≥ 1.0",
                ratio >= 1.0,
                "daemons sharing one database do not slow each other down (on 2 shared cores "
                "they cannot be faster)",
            )
        )
    double = sum(s["double_runs"] for s in setups)
    lost = sum(s["lost"] for s in setups)
    unrun = sum(s["unrecorded"] for s in setups)
    done = all(s["finished"] for s in setups)
    died = sum(s.get("daemons_died", 0) for s in setups)
    rows.append(
        (
            f"in flight: double runs, lost nodes ({load}, every run)",
            f"{double}, {lost}"
            + (f" ({unrun} without a run on record)" if unrun else "")
            + ("" if done else ", timed out")
            + (f", {died} daemon(s) died" if died else ""),
            "0, 0",
            double == lost == unrun == died == 0 and done,
            "every node of every task ran exactly once (one log header per claim, runTime 1) "
            "and ended SUCCESSFUL",
        )
    )
    return rows


def in_flight_section(flight: dict[str, Any] | None) -> list[str]:
    lines = ["## Many tasks in flight", ""]
    if flight is None or "missing" in flight:
        why = (flight or {}).get("missing", "the benchmark did not run: see its output below")
        return [*lines, f"Not measured: {why}.", ""]
    lines += _table(
        [
            "daemons",
            "nodes / s",
            "daemons' CPU / node",
            "machine busy",
            "submit → first claim p50",
            "p99",
            "lock waits",
            "samples with a waiter",
            "deadlocks",
            "double runs",
            "lost nodes",
        ],
        [
            [
                str(s["daemons"]),
                f"{s['nodes_per_s']:.0f}",
                f"{s.get('daemon_cpu_ms_per_node', float('nan')):.2f} ms",
                f"{s.get('machine_busy_cores', float('nan')):.2f} cores",
                f"{s['claim_p50_ms']:.0f} ms",
                f"{s['claim_p99_ms']:.0f} ms",
                f"{s['lock_wait_s']:.1f} backend-s",
                f"{s['lock_waiting_share']:.0%}",
                str(s["deadlocks"]),
                str(s["double_runs"]),
                str(s["lost"] + s["unrecorded"]),
            ]
            for s in flight["setups"]
        ],
    )
    statements: dict[str, float] = {}
    for run in flight["runs"]:
        for statement, seconds in run["locks"].get("seconds_by_statement", {}).items():
            statements[statement] = statements.get(statement, 0.0) + seconds
    top = max(statements, key=statements.__getitem__, default=None)
    share = statements[top] / sum(statements.values()) if top else 0.0
    where = f"; {share:.0%} of it in `{top}`" if top else ""
    lines += [
        "",
        f"{flight['tasks']} tasks, each the shape of OCP's create (Prepare, {flight['hosts']} host "
        f"chains of {flight['chain']}, Finish: {flight['nodes_per_task']} no-op nodes), submitted "
        "as fast as a few threads can to idle daemons (`ocptask daemon`, "
        f"{flight['parallelism']} slots each); a fresh database per run; medians of "
        f"{flight['repeat']} run(s), failures summed.",
        "Nodes / s: every node over first claim to last finish. CPU / node: the daemons' user "
        "and system CPU from the first submit to the last finish, over the nodes; machine "
        "busy: every process's (PostgreSQL, the submitting threads, other work on the machine). "
        "Submit → first claim: a task's "
        "create_time to its first subtask's start_time, the queue in front of "
        f"{flight['tasks']} tasks at once. Lock waits: pg_stat_activity sampled every 10 ms, "
        "backends of the database whose wait_event_type is 'Lock', each counted for the time "
        f"since the last sample{where}. Double runs: subtasks with more than one log header "
        "(the runner writes one per claim) or a runTime above 1. Lost: subtasks not "
        "SUCCESSFUL at the end.",
        "",
    ]
    return lines


def plot_ansible(ansible: dict[str, Any], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for tool, label in (
        ("ocptask", "ocptask"),
        ("ansible", f"Ansible {ansible.get('ansible_version', '')}"),
    ):
        data = ansible["seconds"].get(tool, {})
        if not data:
            continue
        sizes = sorted(int(n) for n in data)
        med = [_median(data[str(n)]) for n in sizes]
        lo = [m - min(data[str(n)]) for n, m in zip(sizes, med, strict=True)]
        hi = [max(data[str(n)]) - m for n, m in zip(sizes, med, strict=True)]
        ax.errorbar(sizes, med, yerr=[lo, hi], marker="o", capsize=3, label=label)
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="hosts",
        ylabel="wall time (s)",
        title="Create an OBProxy cluster on N sandbox hosts",
    )
    ax.set_xticks(sorted(int(n) for n in ansible["seconds"]["ocptask"]))
    ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_per_node(
    engine: dict[str, Any] | None, prefect: dict[str, Any] | None, path: Path
) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    series: dict[str, dict[str, float]] = {}
    for r in (engine or {}).get("rows", []):
        where = " on PostgreSQL" if r.get("database", "").startswith("PostgreSQL") else ""
        series.setdefault(f"ocptask, {r['nodes']} nodes{where}", {})[r["shape"]] = r["run_ms"]
    for r in (prefect or {}).get("rows", []):
        series.setdefault(f"ocptask, {prefect['nodes']} nodes", {})[r["shape"]] = r["ocptask_ms"]
        if "prefect_ms" in r:
            series.setdefault(f"Prefect 3, {prefect['nodes']} nodes", {})[r["shape"]] = r[
                "prefect_ms"
            ]
    shapes = ["chain", "fan-out", "join"]
    width = 0.8 / max(1, len(series))
    for i, (label, values) in enumerate(series.items()):
        xs = [j + i * width for j, s in enumerate(shapes) if s in values]
        ax.bar(xs, [values[s] for s in shapes if s in values], width, label=label)
    target_ms = (engine or {}).get("target_ms", 0.5)
    ax.axhline(target_ms, color="grey", linestyle="--", linewidth=1, label=f"target {target_ms} ms")
    ax.set_xticks([j + width * (len(series) - 1) / 2 for j in range(len(shapes))], shapes)
    ax.set(yscale="log", ylabel="ms per node (wall)", title="Per-node cost of no-op nodes")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_fanout(fanout: dict[str, Any], path: Path) -> None:
    rows = fanout["rows"]
    hosts = [r["hosts"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    left.plot(hosts, [r["wall"] for r in rows], marker="o", label="wall")
    left.plot(
        hosts,
        [r["machine_cpu"] / fanout["cores"] for r in rows],
        marker="s",
        label=f"machine CPU s / {fanout['cores']} cores (the limit)",
    )
    left.set(
        xscale="log",
        yscale="log",
        xlabel="hosts",
        ylabel="seconds",
        title="Create vs the CPU limit",
    )
    left.set_xticks(hosts)
    left.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    left.legend(fontsize=8)
    left.grid(True, which="both", alpha=0.3)
    right.bar([str(h) for h in hosts], [r["own_ms_per_host"] for r in rows])
    right.axhline(60, color="grey", linestyle="--", linewidth=1, label="target 60 ms")
    right.set(xlabel="hosts", ylabel="ms per host chain", title="ocptask's own CPU per host")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def write(f: dict[str, Any], outputs: dict[str, str], report: Path, plots: Path) -> None:
    m = f["machine"]
    found = targets(f)
    held = sum(1 for t in found if t[3])
    lines = [
        "# ocptask benchmarks",
        "",
        f"Made by `make bench` on {m['date']}, commit `{m['commit']}`: {m['cores']} cores "
        f"({m['cpu']}), Python {m['python']}. Sandbox hosts are sshd processes on loopback that "
        "share these cores with the controller, so a host's work and ocptask's compete for them. "
        "Peers run from their own venvs under `~/.cache/ocptask-bench`.",
        "",
        f"## Targets: {held} of {len(found)} hold",
        "",
        *_table(
            ["figure", "measured", "target", "", "what it means"],
            [[a, b, c, _verdict(d), e] for a, b, c, d, e in found],
        ),
        "",
    ]
    engine, prefect, fanout, ansible = (
        f.get(k) for k in ("engine", "prefect", "fanout", "ansible")
    )
    lines += ["## Per node: ocptask alone and beside Prefect", ""]
    if engine or prefect:
        plot_per_node(engine, prefect, plots / "per_node.png")
        lines += ["![per-node cost](plots/per_node.png)", ""]
    if engine:
        lines += _table(
            [
                "shape (1,000 nodes)",
                "database",
                "submit / node",
                "run / node",
                "in-memory loop / node",
            ],
            [
                [
                    r["shape"],
                    r.get("database", "SQLite (WAL)"),
                    f"{r['submit_ms']:.3f} ms",
                    f"{r['run_ms']:.3f} ms",
                    f"{r['loop_ms'] * 1e3:.2f} µs",
                ]
                for r in engine["rows"]
            ],
        )
        lines += [
            "",
            "Shapes: a chain; a fan-out (one root, N-1 leaves); a fan-out that ends in a "
            "join (one node waiting on N-2), the shape of every install.",
            "",
        ]
    if prefect:
        version = prefect.get("prefect_version", "missing")
        lines += _table(
            [
                f"shape ({prefect['nodes']} nodes)",
                "ocptask",
                f"Prefect {version}",
                "Prefect / ocptask",
            ],
            [
                [
                    r["shape"],
                    f"{r['ocptask_ms']:.2f} ms",
                    f"{r['prefect_ms']:.2f} ms" if "prefect_ms" in r else "-",
                    f"{r['prefect_ms'] / r['ocptask_ms']:.1f}x" if "prefect_ms" in r else "-",
                ]
                for r in prefect["rows"]
            ],
        )
        lines += [
            "",
            "Equal work: every ocptask task ends SUCCESSFUL with all its subtasks; every "
            "Prefect flow returns only after its last task run, which waits on all the others. "
            "Prefect runs with its default local setup (ephemeral server, SQLite, thread pool).",
            "",
        ]
        if "prefect_missing" in prefect:
            lines += [f"Prefect could not run: {prefect['prefect_missing']}", ""]
    lines += ["## The create beside Ansible", ""]
    if ansible and ansible.get("seconds", {}).get("ocptask"):
        plot_ansible(ansible, plots / "ansible.png")
        sizes = ansible["sizes"]
        sec = ansible["seconds"]
        rows = []
        for n in sizes:
            ours = _median(sec["ocptask"][str(n)])
            theirs = _median(sec["ansible"][str(n)]) if str(n) in sec.get("ansible", {}) else None
            rows.append(
                [
                    str(n),
                    f"{ours:.2f} s",
                    f"{theirs:.2f} s" if theirs else "-",
                    f"{ours / theirs:.3f}" if theirs else "-",
                ]
            )
        lines += [
            "![ocptask and Ansible](plots/ansible.png)",
            "",
            *_table(
                ["hosts", "ocptask", f"Ansible {ansible.get('ansible_version', '')}", "ratio"], rows
            ),
            "",
            f"Median of {ansible['repeat']}, sizes and tools in alternating order. The playbook "
            "(`bench/peers/obproxy.yml`) does the chain's steps with ansible.builtin modules: ssh "
            "ControlPersist and pipelining, forks = hosts, the free strategy, no facts, host keys "
            "checked. Equal work: after every run of either tool each host's obproxy answers "
            "`SHOW PROXYCONFIG` with the startup parameter, the parameter and the password set.",
            "",
        ]
        if "ansible_missing" in ansible:
            lines += [f"Ansible could not run: {ansible['ansible_missing']}", ""]
    else:
        lines += ["The comparison did not run: see its output below.", ""]
    lines += ["## Fan-out against the CPU limit", ""]
    if fanout:
        plot_fanout(fanout, plots / "fanout.png")
        lines += [
            "![fan-out](plots/fanout.png)",
            "",
            *_table(
                [
                    "hosts",
                    "wall",
                    "machine CPU",
                    "own CPU / host",
                    "wall / limit",
                    "peak RSS",
                    "fds before → after",
                    "SSH before → after",
                ],
                [
                    [
                        str(r["hosts"]),
                        f"{r['wall']:.2f} s",
                        f"{r['machine_cpu']:.2f} s",
                        f"{r['own_ms_per_host']:.0f} ms",
                        f"{r['cpu_limit_ratio']:.2f}",
                        f"{r['peak_rss_mb']:.0f} MB",
                        f"{r['fds_before']:.0f} → {r['fds_after']:.0f}",
                        f"{r['ssh_before']:.0f} → {r['ssh_after']:.0f}",
                    ]
                    for r in fanout["rows"]
                ],
            ),
            "",
            "Each create runs in a fresh process (its peak RSS is its own); medians of the runs. "
            "The limit is the machine's CPU seconds over its cores: what the work would take "
            "with no core ever idle.",
            "",
        ]
        spied = fanout.get("profile") or {}
        if "centres" in spied:
            lines += [
                "### Profile of the 16-host create",
                "",
                "py-spy, sampling the thread that holds the GIL (the controller's Python CPU) "
                "in the process that runs the create: [flame graph](plots/create16-flame.svg). "
                f"{spied['samples']} samples; {spied['imports']:.0%} were imports and "
                f"{spied['no_frame']:.0%} had no Python frame (C code holding the GIL), set "
                "apart. The rest, by what the sample was doing (`bench/profile_summary.py`):",
                "",
                *_table(
                    ["share", "cost centre"],
                    [[f"{share:.1%}", name] for name, share in spied["centres"]],
                ),
                "",
            ]
        elif spied:
            lines += [f"No profile: {spied.get('missing')}", ""]
    lines += history_section(f.get("history"))
    lines += in_flight_section(f.get("inflight"))
    lines += ["## Every benchmark's output", ""]
    for name, text in outputs.items():
        lines += [f"### `{name}`", "", "```", text.rstrip(), "```", ""]
    report.write_text("\n".join(lines))
