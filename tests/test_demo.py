"""The README's first command runs the demo (``python -m fixtures.demo``): run here end to end
on its own sandbox hosts (127.0.0.11-14, its own users and state directory), so a change that
breaks it fails the suite rather than the next stranger's first try."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures import sandbox as sandbox_hosts
from tests.api_helpers import ROOT
from tests.conftest import need_service

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def demo_sandbox() -> Iterator[Path]:
    """The demo's sandbox state, in a directory of this test's own under /var/tmp (its users'
    homes are there: pytest's temporary folders are closed to them); taken down at the end."""
    if os.geteuid() != 0:
        need_service("the demo's sandbox hosts need root")
    state = Path(f"/var/tmp/ocptask-sandbox-demo-test-{os.getpid()}")
    try:
        yield state
    finally:
        sandbox_hosts.down(state)


def test_the_demo_runs_end_to_end(demo_sandbox: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OCPTASK_SANDBOX_DIR": str(demo_sandbox)}
    env.pop("OCPTASK_PACKAGE_DIR", None)  # the demo's own default: the fixture packages
    ran = subprocess.run(
        [sys.executable, "-m", "fixtures.demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    said = ran.stdout + ran.stderr
    assert ran.returncode == 0, said[-4000:]
    assert "Traceback" not in said
    assert "'Install obproxy': SUCCESSFUL" in said  # act 3's batchAdd, a task per host
    assert "clusters left: 0" in said
    # Act 4: three OBProxies in CONFIG_URL mode, each serving what the config server told it.
    assert said.count("hooray (id 1): 10.0.0.1:2881;10.0.0.2:2881;10.0.0.3:2881") == 3, said
    assert (tmp_path / "build" / "demo" / "install-final.json").is_file()
