from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy

from api.auth.users import Users
from engine import Engine
from engine.db.locations import resolve_url
from fixtures import api_server
from fixtures import postgres as pg
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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A private PostgreSQL 15 on 127.0.0.1 for the session; stopped and removed after.

    The port is 54330 unless ``OCPTASK_TEST_PG_PORT`` says otherwise (two test sessions at once).
    """
    if os.geteuid() != 0:
        need_service("the private PostgreSQL cluster is started as root (runuser postgres)")
    data_dir = Path(f"/var/tmp/ocptask-postgres-test-{os.getpid()}")
    for stale in Path("/var/tmp").glob("ocptask-postgres-test-*"):
        owner = int(stale.name.rsplit("-", 1)[1])
        if not Path(f"/proc/{owner}").exists():
            pg.down(stale)
    try:
        url = pg.up(data_dir, port=int(os.environ.get("OCPTASK_TEST_PG_PORT", "54330")))
    except pg.PostgresError as exc:
        pg.down(data_dir)
        need_service(f"PostgreSQL could not start: {exc}")
    try:
        yield url
    finally:
        pg.down(data_dir)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests that use the ``engine`` fixture run on SQLite, and also on PostgreSQL in modules
    that say ``BACKENDS = ["sqlite", "postgres"]``."""
    if "backend" in metafunc.fixturenames:
        backends = getattr(metafunc.module, "BACKENDS", ["sqlite"])
        metafunc.parametrize("backend", backends, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def db_url(backend: str, db_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    if backend == "sqlite":
        yield str(db_path)
        return
    with pg.scratch_database(request.getfixturevalue("postgres_server")) as url:
        yield url


@pytest.fixture
def other(db_url: str) -> Iterator[sqlalchemy.Engine]:
    """A second connection pool on the test's database, as another process (an executor, an
    operator's SQL) would have: what it writes bypasses the Engine under test."""
    eng = sqlalchemy.create_engine(resolve_url(db_url))
    yield eng
    eng.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    with Engine(db_url, parallelism=4) as eng:
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


@dataclass
class ApiEnv:
    """A real ``ocptask serve`` process on 127.0.0.1 over a SQLite file, with a user and an
    access key, its public URL its own (it is the config server of the CONFIG_URL OBProxies it
    installs); ``engine`` is an Engine of the test's own on the same file (for set-up)."""

    url: str
    db: str
    engine: Engine
    server: api_server.Server
    user: str
    password: str
    access_key_id: str
    access_key_secret: str

    @property
    def basic(self) -> tuple[str, str]:
        return (self.user, self.password)

    def client(self, **kwargs: object) -> httpx.Client:
        """An httpx client signed with Basic auth (pass ``auth=`` to sign otherwise)."""
        kwargs.setdefault("auth", self.basic)
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)  # type: ignore[arg-type]


API_USER, API_PASSWORD = "admin", "admin-Passw0rd"


@pytest.fixture
def api_env(tmp_path: Path) -> Iterator[ApiEnv]:
    db = str(tmp_path / "api.db")
    with Engine(db) as engine:
        Users(engine.store).add(API_USER, API_PASSWORD)
        ak, sk = Users(engine.store).create_access_key(API_USER)
        packages = str(Path(__file__).parent.parent / "fixtures" / "packages")
        port = api_server.free_port()
        server = api_server.start(
            db,
            tmp_path / "server.log",
            "--parallelism",
            "4",
            "--public-url",  # its own address: CONFIG_URL OBProxies fetch from it
            f"http://127.0.0.1:{port}",
            port=port,
            env={"OCPTASK_PACKAGE_DIR": packages},
        )
        try:
            yield ApiEnv(server.url, db, engine, server, API_USER, API_PASSWORD, ak, sk)
        finally:
            code = server.stop()
            assert code == 0, f"server exited {code}: {server.log()[-2000:]}"


@pytest.fixture
def api_hosts(api_env: ApiEnv, sandbox: dict) -> Iterator[tuple[ApiEnv, list[int], dict]]:
    """``api_env`` with the sandbox hosts registered: (env, their ids, the sandbox); what their
    installs left on the hosts is cleared after."""
    ids = [api_env.engine.hosts.add(h).id for h in sandbox["inventory"]]
    yield api_env, ids, sandbox
    sandbox_hosts.reset(sandbox["state"])


# Fixtures of services on fixed addresses (sandbox hosts and their users, the test PostgreSQL,
# silent listeners): with ``-n 2`` every test that uses one runs in one worker, in turn; the
# other worker takes the rest beside it.
SERVICES = {"sandbox", "postgres_server", "api_hosts", "silent_host", "demo_sandbox"}


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        params = getattr(item, "callspec", None)
        on_postgres = params is not None and params.params.get("backend") == "postgres"
        if on_postgres or SERVICES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.xdist_group("services"))
