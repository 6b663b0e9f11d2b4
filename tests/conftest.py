from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import Engine
from fixtures import sandbox as sandbox_hosts
from tests import steps

IN_CI = bool(os.environ.get("CI"))


def need_service(reason: str) -> None:
    """A missing service fails the run in CI (it must be there) and skips it elsewhere."""
    if IN_CI:
        pytest.fail(f"required service unavailable in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _reset_steps() -> Iterator[None]:
    steps.reset()
    yield
    steps.reset()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ocptask.db"


@pytest.fixture
def engine(db_path: Path) -> Iterator[Engine]:
    with Engine(str(db_path), parallelism=4) as eng:
        yield eng


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Three real sshd hosts on 127.0.0.111-113:2222 for the whole session; removed at the end."""
    if os.geteuid() != 0:
        need_service("sandbox SSH hosts need root")
    for stale in Path("/var/tmp").glob("ocptask-sandbox-test-*"):
        owner = int(stale.name.rsplit("-", 1)[1])
        if not Path(f"/proc/{owner}").exists():  # its test session died without cleaning up
            sandbox_hosts.down(stale)
    state = Path(f"/var/tmp/ocptask-sandbox-test-{os.getpid()}")
    inventory = tmp_path_factory.mktemp("sandbox") / "inventory.json"
    try:
        # 127.0.0.111-113 and users ocptst1-3: clear of a demo sandbox on 127.0.0.11-13.
        sandbox_hosts.up(3, inventory, state, first_address=111, user_prefix="ocptst")
    except sandbox_hosts.SandboxError as exc:
        sandbox_hosts.down(state)
        need_service(f"sandbox SSH hosts could not start: {exc}")
    try:
        yield {"state": state, "inventory": json.loads(inventory.read_text())["hosts"]}
    finally:
        sandbox_hosts.down(state)
