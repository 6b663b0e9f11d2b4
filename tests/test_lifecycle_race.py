"""Two server processes receive a restart and a delete of one cluster at the same instant, 20
times: exactly one is accepted each time, and the other gets the 409 naming the winner's task.
The hold is taken in the submit's own transaction, on SQLite and on PostgreSQL.

The servers run with ``--no-run``: the race is about the submit, so no task is executed, and
the OBProxy rows are written directly (no host is touched; the real tasks are tested in
test_obproxy_lifecycle).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.auth.users import Users
from engine import Engine, TaskStatus
from fixtures import api_server
from tasks.obproxy import create_cluster
from tasks.obproxy.records import ObproxyServerRecord

BACKENDS = ["sqlite", "postgres"]
ROUNDS = 20
USER, PASSWORD = "admin", "admin-Passw0rd"
pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def servers(engine: Engine, db_url: str, tmp_path: Path) -> Iterator[list[str]]:
    Users(engine.store).add(USER, PASSWORD)
    started = []
    for i in range(2):  # a public URL each: a restart of a CONFIG_URL cluster records it
        port = api_server.free_port()
        public = ("--public-url", f"http://127.0.0.1:{port}")
        started.append(
            api_server.start(db_url, tmp_path / f"server{i}.log", "--no-run", *public, port=port)
        )
    try:
        yield [s.url for s in started]
    finally:
        for server in started:
            assert server.stop() == 0, server.log()[-2000:]


def clusters_with_one_obproxy(engine: Engine) -> list[tuple[int, int]]:
    """(cluster id, OBProxy id) per round: each round races on a cluster of its own."""
    made = []
    for i in range(ROUNDS):
        task = create_cluster(engine, {"name": f"race-{i}", "obproxyInstallParam": {"hostIds": []}})
        assert engine.run(task.id, timeout=30).status is TaskStatus.SUCCESSFUL  # releases it
        cluster_id = int(engine.get(task.id).subtasks[0].context.string_map["obproxy_cluster_id"])
        with engine.store.write() as session:
            server = ObproxyServerRecord(
                cluster_id=cluster_id,
                host_id=1000 + i,
                ip="127.0.0.200",
                sql_port=2883,
                exporter_port=2884,
                version="obproxy-4.3.2.0-1.el7.x86_64.rpm",
                status="RUNNING",
                task_id=task.id,
            )
            session.add(server)
            session.flush()
            made.append((cluster_id, int(server.id)))  # type: ignore[arg-type]
    return made


def _send(
    client: httpx.Client, barrier: threading.Barrier, answers: list[Any], i: int, *call: str
) -> None:
    barrier.wait(30)
    answers[i] = client.request(*call)


def test_restart_and_delete_race_twenty_times(engine: Engine, servers: list[str]) -> None:
    targets = clusters_with_one_obproxy(engine)
    clients = [httpx.Client(base_url=url, auth=(USER, PASSWORD), timeout=60) for url in servers]
    try:
        for round_no, (cluster_id, server_id) in enumerate(targets):
            base = f"/api/v2/obproxy/clusters/{cluster_id}/obproxies/{server_id}"
            calls = [("POST", f"{base}/restart"), ("DELETE", base)]
            if round_no % 2:  # each server gets each call half of the time
                calls.reverse()
            barrier = threading.Barrier(2)
            answers: list[Any] = [None, None]
            threads = [
                threading.Thread(target=_send, args=(clients[i], barrier, answers, i, *call))
                for i, call in enumerate(calls)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            codes = sorted(a.status_code for a in answers)
            assert codes == [200, 409], [a.text for a in answers]
            won = next(a.json()["data"] for a in answers if a.status_code == 200)
            lost = next(a.json()["error"] for a in answers if a.status_code == 409)
            assert lost["code"] == 10005
            assert f"held by task {won['id']} ({won['name']}), which is RUNNING" in lost["message"]
    finally:
        for client in clients:
            client.close()
    # Exactly one task per round was written: the loser left nothing behind.
    names = [t.name for t in engine.list(limit=1000)]
    assert names.count("Install obproxy") == ROUNDS
    assert names.count("Restart obproxy") + names.count("Offline obproxy") == ROUNDS
