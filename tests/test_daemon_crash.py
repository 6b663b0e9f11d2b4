"""A daemon SIGKILLed in the middle of an SSH install step, ten times over.

Two daemons share one PostgreSQL; sandbox hosts are real sshd processes. The install step is
wrapped so that its first run holds a remote command for a few seconds (the window in which the
daemon running it is killed) and so that every run leaves a journal: in the database (who ran
it, from when to when) and on the host (the remote command's process group, start and end). The
lost run's remote command is still going when its lease lapses; only ``clean`` stops it.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy
from cryptography.fernet import Fernet

from engine import Engine, StepContext, SubtaskStatus, Task, TaskStatus, Template
from fixtures import install_request, register_ob_cluster
from fixtures import sandbox as sandbox_hosts
from fixtures.daemons import start as start_daemon
from fixtures.daemons import stop_all
from tasks.obproxy import create_cluster
from tasks.obproxy.install_steps import InstallRpmByPackageAndVersion
from tasks.obproxy.obproxy_host import q
from tasks.obproxy.templates import INSTALL_OBPROXY

BACKENDS = ["postgres"]
ROUNDS = 10
FIRST_RUN_HOLD = 6.0  # seconds the first run's remote command takes: the kill lands inside it
LEASE = "4"
pytestmark = pytest.mark.timeout(420)
INSTALL = "Install rpm by package and version"
PACKAGES = Path(__file__).parent.parent / "fixtures" / "packages"


class JournaledInstall(InstallRpmByPackageAndVersion):
    """The real install, journalled in the database and on the host (see the module doc)."""

    def run(self, ctx: StepContext) -> None:
        with ctx.session() as session:
            runs = session.execute(
                sqlalchemy.text("SELECT count(*) FROM crash_journal WHERE subtask_id = :s"),
                {"s": ctx.subtask_id},
            ).scalar_one()
            row = session.execute(
                sqlalchemy.text(
                    "INSERT INTO crash_journal (subtask_id, executor, started) "
                    "VALUES (:s, :e, :t) RETURNING id"
                ),
                {"s": ctx.subtask_id, "e": ctx.executor, "t": time.time()},
            ).scalar_one()
        hold = FIRST_RUN_HOLD if runs == 0 else 0.1
        journal = q(f"crash-journal-{ctx.subtask_id}")
        self.sh(
            ctx,
            f'echo "start $$ $(date +%s.%N)" >> "$HOME"/{journal}; sleep {hold}; '
            f'echo "end $$ $(date +%s.%N)" >> "$HOME"/{journal}',
        )
        super().run(ctx)
        with ctx.session() as session:
            session.execute(
                sqlalchemy.text("UPDATE crash_journal SET ended = :t WHERE id = :i"),
                {"t": time.time(), "i": row},
            )


class JournaledInstallOnce(JournaledInstall):
    """The same, but not declared idempotent: a lost run is FAILED for the operator."""

    idempotent = False


def template(step: type) -> Template:
    nodes = [replace(n, step=step) if n.name == INSTALL else n for n in INSTALL_OBPROXY.nodes]
    return Template(INSTALL_OBPROXY.name, nodes)


@pytest.fixture
def crash_env(
    sandbox: dict, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict]:
    env = {"OCPTASK_PACKAGE_DIR": str(PACKAGES), "OCPTASK_SECRET_KEY": Fernet.generate_key()}
    env["OCPTASK_SECRET_KEY"] = env["OCPTASK_SECRET_KEY"].decode()  # type: ignore[union-attr]
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    daemons: list[subprocess.Popen[bytes]] = []
    with Engine(db_url) as engine:
        with engine.store.engine.begin() as conn:
            conn.execute(
                sqlalchemy.text(
                    "CREATE TABLE crash_journal (id serial PRIMARY KEY, subtask_id integer, "
                    "executor text, started double precision, ended double precision)"
                )
            )
        host_ids = [engine.hosts.add(h).id for h in sandbox["inventory"][:2]]
        register_ob_cluster(engine, "proxyro-Secret-4711")
        try:
            yield {
                "engine": engine,
                "host_ids": host_ids,
                "daemons": daemons,
                "env": env,
                "state": sandbox["state"],
            }
        finally:
            stop_all(daemons)
            sandbox_hosts.reset(sandbox["state"])


def wait_until(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def settled(engine: Engine, task_id: int, timeout: float = 90) -> Task:
    wait_until(lambda: engine.get(task_id).status is not TaskStatus.RUNNING, timeout, "the task")
    return engine.get(task_id)


def test_sigkilled_daemon_mid_ssh_step(crash_env: dict, db_url: str, tmp_path: Path) -> None:
    engine: Engine = crash_env["engine"]
    daemons: list[subprocess.Popen[bytes]] = crash_env["daemons"]
    by_name: dict[str, subprocess.Popen[bytes]] = {}
    counter = iter(range(100))

    def launch() -> None:
        name = f"crash-{next(counter)}"
        extra = ("--parallelism", "4", "--lease", LEASE, "--sweep", "0.5", "--grace", "1")
        proc = start_daemon(db_url, name, tmp_path / f"{name}.log", *extra, env=crash_env["env"])
        daemons.append(proc)
        by_name[name] = proc

    launch()
    launch()
    for round_ in range(ROUNDS):
        idempotent = round_ % 2 == 0
        step = JournaledInstall if idempotent else JournaledInstallOnce
        request = install_request(crash_env["host_ids"], name=f"crash{round_}")
        task = create_cluster(engine, request, template=template(step))

        def holder(task_id: int = task.id) -> str | None:
            for sub in engine.get(task_id).subtasks:
                if sub.name == INSTALL and sub.status is SubtaskStatus.RUNNING and sub.executor:
                    return sub.executor
            return None

        wait_until(lambda: holder() is not None, 60, "an install step to run")
        time.sleep(0.5)  # its remote command runs now
        victim = holder()
        assert victim is not None
        by_name[victim].kill()  # SIGKILL, by pid: no chance to release anything
        by_name[victim].wait(10)
        killed_at = time.time()
        final = settled(engine, task.id)
        if idempotent:  # run again by the surviving daemon, as a RETRY
            assert final.status is TaskStatus.SUCCESSFUL, round_
            rerun = [s for s in final.subtasks if s.run_time > 1]
            assert rerun and {(s.name, s.run_time) for s in rerun} == {(INSTALL, 2)}
            for sub in rerun:
                text = engine.log(task.id, sub.id)
                assert f"executor {victim} lost while running; the step is idempotent" in text
        else:
            assert final.status is TaskStatus.FAILED, round_
            failed = [s for s in final.subtasks if s.status is SubtaskStatus.FAILED]
            assert failed and all(s.name == INSTALL for s in failed)
            for sub in failed:
                assert f"executor {victim} lost while running" in engine.log(task.id, sub.id)
            engine.retry(task.id)
            final = settled(engine, task.id)
            assert final.status is TaskStatus.SUCCESSFUL, round_
        check_journals(engine, final, crash_env, victim, killed_at)
        launch()  # two daemons again for the next round
        sandbox_hosts.reset(crash_env["state"])  # hosts fresh for the next round's install
        with engine.store.engine.begin() as conn:  # and so their records (one OBProxy a host)
            conn.execute(sqlalchemy.text("DELETE FROM obproxy_server"))
            conn.execute(
                sqlalchemy.text("DELETE FROM task_hold WHERE resource LIKE 'obproxy_host:%'")
            )
    assert len({s.executor for t in engine.list(limit=50) for s in t.subtasks}) > 2


def check_journals(
    engine: Engine, task: Task, crash_env: dict, victim: str, killed_at: float
) -> None:
    """No install ran on two executors at once, in the database's view or on the host."""
    installs = [s for s in task.subtasks if s.name == INSTALL]
    with engine.store.engine.connect() as conn:
        for sub in installs:
            runs = conn.execute(
                sqlalchemy.text(
                    "SELECT executor, started, ended FROM crash_journal "
                    "WHERE subtask_id = :s ORDER BY started"
                ),
                {"s": sub.id},
            ).all()
            assert runs and runs[-1].ended is not None
            for before, after in itertools.pairwise(runs):
                if before.ended is None:  # the lost run: its executor died before the next began
                    assert before.executor == victim and after.started > killed_at
                else:
                    assert after.started >= before.ended
            host = next(h for h in task.subtasks if h.id == sub.id)
            check_host_journal(crash_env, host.parallel_idx, sub.id)


def check_host_journal(crash_env: dict, idx: int, subtask_id: int) -> None:
    """On the host: each run's remote command ended, or was killed, before the next started."""
    user = crash_env["engine"].hosts.get(crash_env["host_ids"][idx]).username
    path = Path(os.path.expanduser(f"~{user}")) / f"crash-journal-{subtask_id}"
    spans: dict[int, list[float]] = {}
    for line in path.read_text().splitlines():
        _, group, at = line.split()
        spans.setdefault(int(group), []).append(float(at))
    ordered = sorted(spans.items(), key=lambda item: item[1][0])
    for (_, before), (_, after) in itertools.pairwise(ordered):
        if len(before) == 2:  # it ended by itself: before the next run began
            assert before[1] <= after[0]
    assert len(ordered[-1][1]) == 2  # the last run's command completed
    for group, span in ordered:
        if len(span) == 1:  # never ended: it was killed, and nothing of it is left
            assert not live_members(group), f"process group {group} still runs"


def live_members(group: int) -> list[int]:
    """Processes of the group that are not zombies (which ``killpg(group, 0)`` would count)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found
