"""A database made by ocptask before the layout of issue 20 (the commit before it, run from its
own source tree) opens with today's code, and its FAILED 3-host create retries to SUCCESSFUL:
its records name step classes at their old module paths (``tasks.obproxy.host_steps``) and its
OceanBase cluster was registered through ``engine.ob_clusters``, which no longer exists."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine import Engine, SubtaskStatus, TaskStatus
from fixtures import register_ob_cluster
from fixtures import sandbox as sandbox_hosts
from tests.api_helpers import ROOT
from tests.conftest import need_service

PREVIOUS = "06e0b8494e2b18f74a4002d03eac5ecfdc9eff8f"
"""The last commit before issue 20: its engine was one flat folder, its CLI lived in tasks/."""
PROXYRO_PASSWORD = "proxyro-Old-Layout-1"
pytestmark = pytest.mark.timeout(300)

# Run by the previous commit's code, in its own tree: register the sandbox hosts and the
# sample's OceanBase cluster, submit a 3-host create, then forget the cluster, so that the
# chains fail at "Set obproxy user and password for connect" and the task ends FAILED.
_MAKE_FAILED_CREATE = textwrap.dedent(
    """
    import json, sys
    from engine import Engine
    from fixtures import install_request, register_ob_cluster
    from tasks.obproxy import create_cluster

    db, inventory, password = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    with Engine(db) as engine:
        ids = [engine.hosts.add(h).id for h in inventory]
        register_ob_cluster(engine, password)
        task = create_cluster(engine, install_request(ids))
        engine.ob_clusters.remove(1)
        final = engine.run(task.id, timeout=200)
        print(json.dumps({"id": final.id, "status": final.status.value}))
    """
)


def _previous_tree(into: Path, commit: str = PREVIOUS) -> Path:
    """A previous commit's files, from this checkout's history (a clone has it)."""
    if not (ROOT / ".git").exists():
        need_service("a git checkout with its history (the previous commit's source)")
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", commit],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        need_service(f"commit {commit[:10]} in this checkout: {archive.stderr.decode()[:200]}")
    into.mkdir()
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def test_a_failed_create_of_the_previous_layout_retries_to_successful(
    sandbox: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "ocptask.db"
    try:
        before = run_previous(
            PREVIOUS, _MAKE_FAILED_CREATE, db, sandbox, PROXYRO_PASSWORD, monkeypatch
        )
        assert before["status"] == "FAILED"

        with Engine(str(db), parallelism=4) as engine:
            failed = engine.get(before["id"])
            assert failed.status is TaskStatus.FAILED
            stuck = {s.name for s in failed.subtasks if s.status is SubtaskStatus.FAILED}
            assert stuck == {"Set obproxy user and password for connect"}
            with engine.store.engine.connect() as conn:  # the records keep the old paths
                rows = conn.exec_driver_sql("SELECT class_name FROM subtask_instance")
                paths = {path for (path,) in rows}
            assert "tasks.obproxy.host_steps.SetObproxyUserPassword" in paths
            register_ob_cluster(engine, PROXYRO_PASSWORD)
            final = engine.run(engine.retry(failed.id).id, timeout=200)
            problems = [
                (s.name, engine.log(final.id, s.id)[-500:])
                for s in final.subtasks
                if s.status is not SubtaskStatus.SUCCESSFUL
            ]
            assert final.status is TaskStatus.SUCCESSFUL, problems
    finally:
        sandbox_hosts.reset(sandbox["state"])


def run_previous(
    commit: str,
    script: str,
    db: Path,
    sandbox: dict,
    password: str,
    monkeypatch: pytest.MonkeyPatch,
) -> dict:
    """Run ``script`` (argv: database, the sandbox's inventory, the proxyro password) with a
    previous commit's code in its own tree, on the sandbox hosts; its last output line, as
    JSON. Today's code then uses that commit's own stand-in packages: today's refuse to start
    without lib/ on the library path, which the old start did not set (issue 22)."""
    old = _previous_tree(db.parent / f"tree-{commit[:10]}", commit)
    packages = str(old / "fixtures" / "packages")
    env = {**os.environ, "PYTHONPATH": str(old), "OCPTASK_PACKAGE_DIR": packages}
    argv = [sys.executable, "-c", script, str(db), json.dumps(sandbox["inventory"]), password]
    made = subprocess.run(
        argv, cwd=old, env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert made.returncode == 0, made.stderr[-3000:]
    monkeypatch.setenv("OCPTASK_PACKAGE_DIR", packages)
    return json.loads(made.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]
