"""Many tasks in flight: 200 tasks of 26 no-op nodes at once on one PostgreSQL, run by 1 daemon,
then by 3 (real ``ocptask daemon`` processes, ``--parallelism`` slots each).

Every task has the shape of OCP's create: a Prepare node, one chain of 3 steps per host for 8
hosts, and a Finish node that joins the chains: 1 + 8 x 3 + 1 = 26 nodes (``--hosts``,
``--chain``). The daemons are started first and idle; then ``--submitters`` threads submit every
task as fast as they can, ``--batch`` tasks per transaction (1: as separate API calls would).
Each run has a fresh database. It prints, per run and then as medians per setup:

- nodes per second: every node of every task over first claim to last finish; beside it the
  daemons' CPU per node and how busy the whole machine was (a 2-core machine is the limit);
- submit -> first claim: each task's create_time to its first subtask's start_time, p50 and p99;
- lock waits: pg_stat_activity sampled every 10 ms while the tasks run; a backend of the
  database whose wait_event_type is 'Lock' is waiting for a heavyweight lock (a row lock shows as
  'transactionid' or 'tuple'). Shown: the share of samples with a waiter, the most at once, the
  backend-seconds spent waiting (waiters x time between samples, summed) by wait event and by
  the statement that waited; and deadlocks (pg_stat_database: those PostgreSQL broke);
- the checks: double runs (subtasks run more than once: the runner writes one header to the
  subtask's log per claim, and a lost run's re-run also counts in runTime), lost nodes
  (subtasks not SUCCESSFUL at the end), and daemons that died before they were stopped. All
  must be 0, else the script exits 1 (its JSON is still written).

Then 3 daemons' nodes per second over 1 daemon's: target >= 1.0 (more daemons on the same cores
must not be slower).

    python bench/in_flight.py [--tasks 200] [--hosts 8] [--chain 3] [--daemons 1,3]
        [--parallelism 10] [--repeat 1] [--db SERVER_URL] [--json PATH]

Without ``--db`` a private PostgreSQL 15 is started on 127.0.0.1:``--pg-port`` (as root, see
fixtures/postgres.py) and removed after; with it, each run gets a fresh database on that server.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy
from sqlalchemy import select

from engine import Engine, Node, Template
from engine.clock import as_utc
from engine.db.records import LOGS, SUBTASKS, TASKS
from fixtures import daemons, postgres

STEP = "bench.noop.Noop"
PG_PORT = 54339
HEADER = re.compile(r"^#{12}\{[A-Z_]+\}\{[^}]*\}#{12}$", re.MULTILINE)  # one per run (subtask_log)
LOCK_WAITERS = sqlalchemy.text(
    "SELECT wait_event, left(regexp_replace(query, '\\s+', ' ', 'g'), 100), count(*) "
    "FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
    "GROUP BY 1, 2"
)


@dataclass
class Checks:
    """Subtask ids that break "every node ran exactly once and succeeded"."""

    double_runs: list[int] = field(default_factory=list)  # run more than once
    lost: list[int] = field(default_factory=list)  # not SUCCESSFUL at the end
    unrecorded: list[int] = field(default_factory=list)  # SUCCESSFUL without a run on record

    def counts(self) -> dict[str, int]:
        return {"double_runs": len(self.double_runs), "lost": len(self.lost),
                "unrecorded": len(self.unrecorded)}  # fmt: skip

    def examples(self) -> dict[str, list[int]]:
        return {"double_runs": self.double_runs[:5], "lost": self.lost[:5],
                "unrecorded": self.unrecorded[:5]}  # fmt: skip


def check(subtasks: Iterable[Mapping[str, Any]], logs: Iterable[tuple[int, str]]) -> Checks:
    """Runs per subtask from its records: the headers its log holds (the runner writes one per
    claim) or its runTime (a lost run's re-run counts there even if the lost one wrote nothing),
    whichever is more; and its final status."""
    headers: Counter[int] = Counter()
    for subtask_id, text in logs:
        headers[subtask_id] += len(HEADER.findall(text))
    found = Checks()
    for s in subtasks:
        runs = max(headers[s["id"]], s["run_time"] or 0)
        if s["status"] != "SUCCESSFUL":
            found.lost.append(s["id"])
        if runs > 1:
            found.double_runs.append(s["id"])
        elif headers[s["id"]] == 0 and s["status"] == "SUCCESSFUL":
            found.unrecorded.append(s["id"])
    return found


def percentile(ordered: list[float], q: float) -> float:
    """Nearest rank: the smallest value with at least ``q`` of them at or below it."""
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


class LockSampler:
    """Samples the database's backends waiting for a lock (pg_stat_activity) on a thread."""

    def __init__(self, url: str, every: float = 0.01) -> None:
        self.every = every
        self.samples = self.waiting_samples = self.max_waiting = 0
        self.seconds: Counter[str] = Counter()
        self.statements: Counter[str] = Counter()  # what the waiters were running
        self._eng = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lock-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        with self._eng.connect() as conn:
            last = time.monotonic()
            while not self._stop.wait(self.every):
                rows = conn.execute(LOCK_WAITERS).all()
                now = time.monotonic()
                waiting = sum(n for _, _, n in rows)
                self.samples += 1
                self.waiting_samples += bool(waiting)
                self.max_waiting = max(self.max_waiting, waiting)
                for event, statement, n in rows:  # each waited, at most, since the last sample
                    self.seconds[event] += n * (now - last)
                    self.statements[statement] += n * (now - last)
                last = now

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        self._eng.dispose()
        return {
            "samples": self.samples,
            "waiting_samples": self.waiting_samples,
            "max_waiting": self.max_waiting,
            "wait_s": sum(self.seconds.values()),
            "seconds_by_event": dict(self.seconds.most_common()),
            "seconds_by_statement": dict(self.statements.most_common(5)),
        }


def create_like(hosts: int, chain: int) -> Template:
    """Prepare, a chain of ``chain`` steps per host, Finish after every chain."""
    nodes = [Node(STEP, "Prepare")]
    for h in range(hosts):
        for s in range(chain):
            up = f"host{h}.step{s - 1}" if s else "Prepare"
            nodes.append(Node(STEP, f"host{h}.step{s}", upstreams=[up]))
    ends = [f"host{h}.step{chain - 1}" for h in range(hosts)] if chain else ["Prepare"]
    return Template("in-flight", [*nodes, Node(STEP, "Finish", upstreams=ends)])


@contextmanager
def fresh_database(server: str, name: str) -> Iterator[str]:
    admin = sqlalchemy.create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
        yield server.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def wait_done(url: str, timeout: float) -> bool:
    """Until no task is RUNNING; False if some still are after ``timeout`` seconds."""
    eng = sqlalchemy.create_engine(url)
    running = select(sqlalchemy.func.count()).where(TASKS.c.status == "RUNNING")
    deadline = time.monotonic() + timeout
    try:
        with eng.connect() as conn:
            while conn.execute(running).scalar():
                conn.rollback()  # a fresh snapshot each time round
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.1)
        return True
    finally:
        eng.dispose()


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (/proc/<pid>/stat), 0 for one that is gone."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime: the 14th and 15th fields
    return total / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[float, float]:
    """CPU seconds the whole machine spent busy so far, and wall seconds (/proc/stat, uptime)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(ticks) - ticks[3] - ticks[4]  # all but idle and iowait
    return busy / os.sysconf("SC_CLK_TCK"), time.monotonic()


def measure(url: str, count: int, args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    """One setup: ``count`` daemons run ``args.tasks`` tasks submitted at once; its figures."""
    template = create_like(args.hosts, args.chain)
    with Engine(url, args.submitters) as engine:  # creates the tables before the daemons race to
        extra = ("--parallelism", str(args.parallelism))
        paths = [logs / f"daemon-{i}.log" for i in range(count)]  # a new folder per run:
        # daemons.start waits for "serving" in the file, which must not be an earlier run's
        procs = []
        try:
            for i, path in enumerate(paths):
                procs.append(daemons.start(url, f"inflight-{i}", path, *extra))
            sampler = LockSampler(url)
            sampler.start()
            started = time.monotonic()
            pids = [p.pid for p in procs]
            cpu_before, busy_before = cpu_seconds(pids), machine_busy()
            sizes = [min(args.batch, args.tasks - i) for i in range(0, args.tasks, args.batch)]
            with ThreadPoolExecutor(args.submitters) as pool:
                list(pool.map(lambda n: engine.submit_batch(template, [(None, None)] * n), sizes))
            submit_s = time.monotonic() - started
            finished = wait_done(url, args.timeout)
            cpu = cpu_seconds(pids) - cpu_before
            busy_after = machine_busy()
            locks = sampler.stop()
            died = sum(p.poll() is not None for p in procs)  # exited before they were stopped
        finally:
            daemons.stop_all(procs, gently=True)
        with engine.store.engine.connect() as conn:
            subs = [r._asdict() for r in conn.execute(select(*SUBTASKS.c))]
            created = dict(conn.execute(select(TASKS.c.id, TASKS.c.create_time)).all())
            texts = conn.execute(select(LOGS.c.subtask_id, LOGS.c.text)).all()
            locks["deadlocks"] = conn.execute(
                sqlalchemy.text(
                    "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
                )
            ).scalar()
    found = check(subs, texts)
    first: dict[int, Any] = {}
    for s in subs:
        if s["start_time"] is not None:
            at = as_utc(s["start_time"])
            first[s["task_id"]] = min(at, first.get(s["task_id"], at))
    executors: dict[int, set[str]] = {}
    for s in subs:
        executors.setdefault(s["task_id"], set()).add(s["executor"] or "-")
    waits = sorted((at - as_utc(created[task])).total_seconds() * 1e3 for task, at in first.items())
    starts = [as_utc(s["start_time"]) for s in subs if s["start_time"] is not None]
    ends = [as_utc(s["finish_time"]) for s in subs if s["finish_time"] is not None]
    span = (max(ends) - min(starts)).total_seconds() if starts and ends else float("nan")
    texts_of_logs = [p.read_text(errors="replace") for p in paths]
    tracebacks = sum(t.count("Traceback") for t in texts_of_logs)
    first_trace = next(
        (t[t.index("Traceback") :][:3000] for t in texts_of_logs if "Traceback" in t), ""
    )
    return {
        "daemons": count,
        "nodes": len(subs),
        "finished": finished,
        "daemons_died": died,
        "submit_s": submit_s,
        "span_s": span,
        "nodes_per_s": len(subs) / span if span > 0 else float("nan"),
        "claim_p50_ms": percentile(waits, 0.50),
        "claim_p99_ms": percentile(waits, 0.99),
        "claim_max_ms": waits[-1] if waits else float("nan"),
        "locks": locks,
        "daemon_cpu_ms_per_node": cpu / max(1, len(subs)) * 1e3,
        "machine_busy_cores": (busy_after[0] - busy_before[0]) / (busy_after[1] - busy_before[1]),
        "per_executor": dict(Counter(s["executor"] or "-" for s in subs)),
        "tasks_on_several": sum(len(e) > 1 for e in executors.values()),
        "daemon_tracebacks": tracebacks,
        "daemon_first_traceback": first_trace,
        **found.counts(),
        "examples": found.examples(),
    }


def show(r: dict[str, Any]) -> None:
    lk = r["locks"]
    by_event = ", ".join(f"{e} {s:.2f} s" for e, s in lk["seconds_by_event"].items()) or "none"
    verdict = "ok" if r["double_runs"] == r["lost"] == r["unrecorded"] == 0 else "FAILED"
    ran_on = ", ".join(f"{e} {n}" for e, n in sorted(r["per_executor"].items()))
    lines = [
        f"submitted in {r['submit_s']:.1f} s; {r['nodes']} nodes ran on {ran_on}"
        + (f" ({r['tasks_on_several']} tasks on several)" if len(r["per_executor"]) > 1 else "")
        + ("" if r["finished"] else "; TIMED OUT with tasks still RUNNING")
        + (f"; {r['daemons_died']} daemon(s) DIED before the end" if r["daemons_died"] else ""),
        f"nodes per second (first claim -> last finish): {r['nodes_per_s']:.0f} over "
        f"{r['span_s']:.1f} s; daemons' CPU {r['daemon_cpu_ms_per_node']:.2f} ms per node; "
        f"machine busy {r['machine_busy_cores']:.2f} of {os.cpu_count()} cores (all its work)",
        f"submit -> first claim: p50 {r['claim_p50_ms']:.0f} ms, p99 {r['claim_p99_ms']:.0f} ms, "
        f"max {r['claim_max_ms']:.0f} ms",
        f"lock waits: a backend waited in {lk['waiting_samples']} of {lk['samples']} samples, "
        f"at most {lk['max_waiting']} at once; {lk['wait_s']:.2f} backend-s waiting ({by_event}); "
        f"deadlocks {lk['deadlocks']}",
        *(
            f"  {seconds:.2f} s in: {statement}"
            for statement, seconds in list(lk["seconds_by_statement"].items())[:2]
        ),
        f"double runs {r['double_runs']}, lost nodes {r['lost']}, "
        f"unrecorded runs {r['unrecorded']}: {verdict}"
        + (f" (subtask ids: {r['examples']})" if verdict != "ok" else ""),
    ]
    if r["daemon_tracebacks"]:
        lines.append(f"daemon logs: {r['daemon_tracebacks']} tracebacks; the first:")
        lines += r["daemon_first_traceback"].splitlines()
    print("\n".join("  " + line for line in lines))


def summary(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per number of daemons: medians of the figures, sums of the failures."""
    out = []
    for count in sorted({r["daemons"] for r in runs}):
        mine = [r for r in runs if r["daemons"] == count]

        def median(key: str, mine: list[dict[str, Any]] = mine) -> float:
            return statistics.median(r[key] for r in mine)

        out.append(
            {
                "daemons": count,
                "runs": len(mine),
                "nodes_per_s": median("nodes_per_s"),
                "nodes_per_s_all": [r["nodes_per_s"] for r in mine],
                "claim_p50_ms": median("claim_p50_ms"),
                "claim_p99_ms": median("claim_p99_ms"),
                "daemon_cpu_ms_per_node": median("daemon_cpu_ms_per_node"),
                "machine_busy_cores": median("machine_busy_cores"),
                "lock_wait_s": statistics.median(r["locks"]["wait_s"] for r in mine),
                "lock_waiting_share": statistics.median(
                    r["locks"]["waiting_samples"] / max(1, r["locks"]["samples"]) for r in mine
                ),
                "lock_max": max(r["locks"]["max_waiting"] for r in mine),
                "deadlocks": sum(r["locks"]["deadlocks"] or 0 for r in mine),
                **{k: sum(r[k] for r in mine) for k in ("double_runs", "lost", "unrecorded")},
                "finished": all(r["finished"] for r in mine),
                "daemons_died": sum(r["daemons_died"] for r in mine),
            }
        )
    return out


def table(setups: list[dict[str, Any]]) -> None:
    print(
        f"{'daemons':>7} {'nodes/s':>8} {'CPU/node':>9} {'claim p50':>10} {'claim p99':>10} "
        f"{'lock wait':>10} {'waiting':>8} {'deadlocks':>9} {'double':>7} {'lost':>5} {'unrun':>6}"
    )
    for s in setups:
        print(
            f"{s['daemons']:>7} {s['nodes_per_s']:>8.0f} {s['daemon_cpu_ms_per_node']:>7.2f}ms "
            f"{s['claim_p50_ms']:>8.0f}ms {s['claim_p99_ms']:>8.0f}ms {s['lock_wait_s']:>9.2f}s "
            f"{s['lock_waiting_share']:>8.0%} {s['deadlocks']:>9} {s['double_runs']:>7} "
            f"{s['lost']:>5} {s['unrecorded']:>6}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--hosts", type=int, default=8, help="chains per task")
    parser.add_argument("--chain", type=int, default=3, help="steps per host chain")
    parser.add_argument("--daemons", default="1,3", help="setups to run, in this order")
    parser.add_argument("--parallelism", type=int, default=10, help="slots of each daemon")
    parser.add_argument("--submitters", type=int, default=4, help="threads submitting tasks")
    parser.add_argument("--batch", type=int, default=1, help="tasks per submit transaction")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600, help="seconds for one setup")
    parser.add_argument("--db", help="a PostgreSQL server's URL (its databases are made here)")
    parser.add_argument("--pg-port", type=int, default=PG_PORT)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    counts = [int(c) for c in args.daemons.split(",")]
    nodes = 2 + args.hosts * args.chain
    head = {"tasks": args.tasks, "nodes_per_task": nodes, "hosts": args.hosts, "chain": args.chain,
            "parallelism": args.parallelism, "repeat": args.repeat}  # fmt: skip
    if args.db is None and os.geteuid() != 0:
        missing = "the private PostgreSQL is started as root (runuser postgres); or pass --db"
        print(f"skipped: {missing}")
        if args.json:
            args.json.write_text(json.dumps({**head, "missing": missing}, indent=1))
        return 0
    print(
        f"{args.tasks} tasks of {nodes} no-op nodes (Prepare, {args.hosts} chains of "
        f"{args.chain}, Finish), submitted at once by {args.submitters} threads; PostgreSQL 15; "
        f"{args.parallelism} slots per daemon; {args.repeat} run(s) per setup"
    )
    runs = []
    data_dir = Path(f"/var/tmp/ocptask-postgres-bench-inflight-{os.getpid()}")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            server = args.db or postgres.up(data_dir, port=args.pg_port)
            for rep in range(args.repeat):
                for count in counts:
                    print(f"{count} daemon(s), run {rep + 1}")
                    name = f"inflight_{os.getpid()}_{rep}_{count}"
                    with fresh_database(server, name) as url:
                        logs = Path(tmp) / name
                        logs.mkdir()
                        runs.append(measure(url, count, args, logs))
                    show(runs[-1])
        finally:
            if args.db is None:
                postgres.down(data_dir)
    setups = summary(runs)
    print(f"\nmedians of {args.repeat} run(s):")
    table(setups)
    ratio = None
    if len(setups) > 1 and setups[0]["nodes_per_s"] > 0:
        ratio = setups[-1]["nodes_per_s"] / setups[0]["nodes_per_s"]
        verdict = "holds" if ratio >= 1.0 else "MISSED"
        print(
            f"{setups[-1]['daemons']} daemons / {setups[0]['daemons']} daemon nodes per second: "
            f"{ratio:.2f}  (target >= 1.0: {verdict})"
        )
    failed = [s for s in setups if s["double_runs"] or s["lost"] or s["unrecorded"]]
    failed += [s for s in setups if (s["daemons_died"] or not s["finished"]) and s not in failed]
    totals = {k: sum(s[k] for s in setups) for k in ("double_runs", "lost", "unrecorded")}
    print(f"double runs {totals['double_runs']}, lost nodes {totals['lost']}, unrecorded runs "
          f"{totals['unrecorded']}, daemons died {sum(s['daemons_died'] for s in setups)}: "
          f"{'FAILED' if failed else 'ok'}")  # fmt: skip
    if args.json:
        body = {**head, "runs": runs, "setups": setups, "ratio": ratio}
        args.json.write_text(json.dumps(body, indent=1, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
