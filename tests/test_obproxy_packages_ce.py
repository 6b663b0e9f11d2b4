"""The packages users have: the community edition ``obproxy-ce-<version>-1.el7.x86_64.rpm``, in the
real package's layout (bin/obproxy, bin/obproxyd.sh, lib/libstdc++.so.6), created, added and
upgraded through the HTTP API on real sandbox hosts; each obproxy runs with its install's lib/
first on its library path, as obd starts it and as the real binary needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from fixtures import CE_PACKAGE, CE_UPGRADE, install_request, register_ob_cluster
from fixtures import sandbox as sandbox_hosts
from tasks.obproxy.packages import short_name
from tests.api_helpers import data_of, wait_task
from tests.conftest import ApiEnv

CLUSTERS = "/api/v2/obproxy/clusters"
LIBSTDCXX = "lib/libstdc++.so.6"
pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def site(api_hosts: tuple[ApiEnv, list[int], dict]) -> tuple[ApiEnv, list[int], dict[str, Path]]:
    """The API on the sandbox hosts, the sample's OceanBase cluster registered; each host's
    home by address."""
    env, ids, sandbox = api_hosts
    register_ob_cluster(env.engine, "proxyro-Secret-4711")
    homes = {h.address: Path(h.home) for h in sandbox_hosts.load(sandbox["state"])}
    return env, ids, homes


def done(client: httpx.Client, task: dict[str, Any]) -> dict[str, Any]:
    final = wait_task(client, task["id"], timeout=200)
    assert final["status"] == "SUCCESSFUL", [
        (s["name"], s["status"]) for s in final["subtasks"] if s["status"] != "SUCCESSFUL"
    ]
    return final


def check_install(home: Path, version: str, package: str) -> None:
    """The install of ``version`` in ``home`` is the whole package, from ``package``, and its
    obproxy runs with the install's lib/ first on LD_LIBRARY_PATH."""
    install = home / f"obproxy-{version}"
    for kept in ("bin/obproxy", "bin/obproxyd.sh", LIBSTDCXX):
        assert (install / kept).is_file(), f"{install / kept} is missing"
    assert (home / ".ocptask" / "packages" / package).is_file()  # what was uploaded
    pid = (install / "run" / "obproxy.pid").read_text().strip()
    proc = Path(f"/proc/{pid}")
    assert (proc / "cwd").resolve() == install.resolve()
    environ = dict(
        entry.split(b"=", 1) for entry in (proc / "environ").read_bytes().split(b"\0") if entry
    )
    first = environ[b"LD_LIBRARY_PATH"].decode().split(":")[0]
    assert Path(first).resolve() == (install / "lib").resolve(), environ[b"LD_LIBRARY_PATH"]


def test_create_add_and_upgrade_the_community_package(
    site: tuple[ApiEnv, list[int], dict[str, Path]],
) -> None:
    env, hosts, homes = site
    with env.client() as client:
        done(client, data_of(client.post(CLUSTERS, json=install_request(hosts[:2], CE_PACKAGE))))
        cluster = data_of(client.get(CLUSTERS))["contents"][0]
        url = f"{CLUSTERS}/{cluster['id']}"

        def servers() -> list[dict[str, Any]]:
            return data_of(client.get(url))["obproxies"]

        assert [(s["version"], s["status"]) for s in servers()] == [("4.3.2.0-1", "RUNNING")] * 2
        for server in servers():
            check_install(homes[server["ip"]], "4.3.2.0", CE_PACKAGE)

        add = {"hostIds": [hosts[2]], "sqlPort": 2883, "exporterPort": 2884, "version": CE_PACKAGE}
        added = data_of(client.post(f"{url}/obproxies/batchAdd", json=add))["contents"]
        done(client, added[0])
        assert [s["status"] for s in servers()] == ["RUNNING"] * 3
        check_install(homes[servers()[2]["ip"]], "4.3.2.0", CE_PACKAGE)

        ids = ",".join(str(s["id"]) for s in servers())
        body = {"shortRpmName": "obproxy-ce-4.3.3.0-1"}  # OCP 4.2's upgrade body
        assert short_name(CE_UPGRADE) == body["shortRpmName"]
        done(client, data_of(client.post(f"{url}/obproxies/{ids}/upgrade", json=body)))
        assert data_of(client.get(url))["versions"] == [{"version": "4.3.3.0-1", "count": 3}]
        for server in servers():
            check_install(homes[server["ip"]], "4.3.3.0", CE_UPGRADE)


def test_a_start_without_the_bundled_library_fails_and_says_why(
    site: tuple[ApiEnv, list[int], dict[str, Path]],
) -> None:
    """The stand-in refuses to start without its lib/libstdc++.so.6 as the real binary would: a
    restart then fails naming the library, and once it is back a retry finishes the task."""
    env, hosts, homes = site
    with env.client() as client:
        done(client, data_of(client.post(CLUSTERS, json=install_request(hosts[:1], CE_PACKAGE))))
        cluster = data_of(client.get(CLUSTERS))["contents"][0]
        url = f"{CLUSTERS}/{cluster['id']}"
        server = data_of(client.get(url))["obproxies"][0]
        library = homes[server["ip"]] / "obproxy-4.3.2.0" / LIBSTDCXX
        aside = library.with_name("aside")
        library.rename(aside)  # keeps its owner, for the rename back
        failed = wait_task(
            client, data_of(client.post(f"{url}/obproxies/{server['id']}/restart"))["id"]
        )
        assert failed["status"] == "FAILED"
        broken = [s for s in failed["subtasks"] if s["status"] == "FAILED"]
        assert len(broken) == 1, broken
        log_url = f"/api/v2/tasks/instances/{failed['id']}/subtasks/{broken[0]['id']}/log"
        log = data_of(client.get(log_url))["log"]
        assert "error while loading shared libraries: libstdc++.so.6" in log
        assert f"/obproxy-4.3.2.0/{LIBSTDCXX} is missing" in log  # names the file
        aside.rename(library)
        retried = data_of(client.post(f"/api/v2/tasks/instances/{failed['id']}/retry"))
        done(client, retried)
        check_install(homes[server["ip"]], "4.3.2.0", CE_PACKAGE)
