"""``ocptask serve`` as OceanBase's config server (``/services``), over real HTTP on a real
server process: ob-configserver's shapes key for key, ``Version`` moving with the content, no
password in any answer, observers' registrations off unless asked for, and a CONFIG_URL create on
hosts refused at submit on every surface when no public URL is set. The OBProxies that fetch from
it on sandbox hosts are ``tests/test_config_url_mode.py``."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.auth.users import Users
from engine import Engine, RequestInvalid
from fixtures import (
    OB_CLUSTER_ID,
    OB_CLUSTER_NAME,
    PACKAGE,
    PACKAGE_DIR,
    api_server,
    sample_request,
)
from tasks.obclusters.registry import ObClusters
from tasks.obproxy import create_cluster
from tests.api_helpers import console_login
from tests.conftest import API_PASSWORD, API_USER, ApiEnv

ROOT = Path(__file__).parent.parent
SHAPES = json.loads((ROOT / "fixtures" / "ob_configserver" / "shapes.json").read_text())["structs"]
PASSWORD = "Proxyro-Secret-4711"
WRAPPER = set(SHAPES["ApiResponse"]["keys"])


def keys(name: str) -> set[str]:
    return set(SHAPES[name]["keys"])


def services(env: ApiEnv, method: str = "GET", **params: Any) -> httpx.Response:
    """A config-server request as obproxy and observers make it: no credentials."""
    body = params.pop("json", None)
    with httpx.Client(base_url=env.url, timeout=30) as client:
        return client.request(method, "/services", params=params, json=body)


@pytest.fixture
def registered(api_env: ApiEnv) -> ApiEnv:
    clusters = ObClusters(api_env.engine)
    clusters.add(OB_CLUSTER_ID, OB_CLUSTER_NAME, rs_list="10.0.0.1:2882:2881", password=PASSWORD)
    clusters.add(7, "other", rs_list="10.0.7.1:2881;10.0.7.2:2881", password=PASSWORD)
    return api_env


def link_proxy_cluster(env: ApiEnv, name: str = "OBProxy001") -> None:
    """The docs' sample create (CONFIG_URL, no hosts): a cluster linked to hooray only."""
    with env.client() as client:
        answer = client.post("/api/v2/obproxy/clusters", json=sample_request() | {"name": name})
    assert answer.status_code == 200, answer.text


def test_answers_have_ob_configservers_shapes(registered: ApiEnv) -> None:
    link_proxy_cluster(registered)
    config = services(registered, Action="GetObProxyConfig", ObproxyClusterName="OBProxy001")
    assert config.status_code == 200
    answer = config.json()
    assert set(answer) == WRAPPER
    assert (answer["Code"], answer["Message"], answer["Success"]) == (200, "successful", True)
    data = answer["Data"]
    assert set(data) == keys("ObProxyConfig")
    assert set(data["ObProxyDatabaseInfo"]) == keys("MetaDatabaseInfo")
    (entry,) = data["ObRootServiceInfoUrlList"]  # the proxy cluster links hooray only
    assert set(entry) == keys("RootServiceInfoUrl") and entry["ObRegion"] == OB_CLUSTER_NAME
    assert entry["ObRootServiceInfoUrl"].startswith(registered.url + "/services?")
    assert len(data["Version"]) == 32 and int(data["Version"], 16) >= 0

    everything = services(registered, Action="GetObProxyConfig").json()["Data"]
    names = [e["ObRegion"] for e in everything["ObRootServiceInfoUrlList"]]
    assert names == ["hooray", "other"]  # no ObproxyClusterName: all, as ob-configserver

    rs = httpx.get(entry["ObRootServiceInfoUrl"], timeout=30).json()["Data"]
    assert set(rs) == keys("ObRootServiceInfo")
    assert (rs["ObCluster"], rs["ObRegion"], rs["ObClusterId"]) == ("hooray", "hooray", 1)
    assert rs["RsList"] == [{"address": "10.0.0.1:2882", "role": "FOLLOWER", "sql_port": 2881}]
    assert all(set(s) == keys("ObServerInfo") for s in rs["RsList"])
    by_name = services(registered, Action="ObRootServiceInfo", ObCluster="hooray").json()
    assert by_name["Data"] == rs
    other = services(registered, Action="ObRootServiceInfo", ObRegion="other").json()["Data"]
    assert [s["address"] for s in other["RsList"]] == ["10.0.7.1:2882", "10.0.7.2:2882"]
    listed = services(registered, Action="ObRootServiceInfo", ObCluster="hooray", version="2")
    assert listed.json()["Data"] == [rs]  # version 2 without an id: a list

    template = services(registered, Action="GetObRootServiceInfoUrlTemplate").json()["Data"]
    assert set(template) == keys("ObProxyConfigWithTemplate")
    assert template["ObClusterList"] == ["hooray", "other"]
    only = services(registered, Action="GetObProxyConfig", VersionOnly="true").json()["Data"]
    assert set(only) == keys("ObProxyConfigVersionOnly")
    assert only["Version"] == everything["Version"]
    idc = services(registered, Action="ObIDCRegionInfo", ObCluster="hooray").json()["Data"]
    assert set(idc) == keys("ObClusterIdcRegionInfo") and idc["IDCList"] == []


def test_refusals_are_in_its_wrapper(registered: ApiEnv) -> None:
    cases = [
        ({"Action": "Nonsense"}, 400, "invalid action"),
        ({}, 400, "invalid action"),
        ({"Action": "ObRootServiceInfo"}, 400, "no ObCluster or ObRegion"),
        ({"Action": "ObRootServiceInfo", "ObCluster": "nope"}, 404, "'nope'"),
        ({"Action": "ObRootServiceInfo", "ObCluster": "hooray", "ObClusterId": "7"}, 404, "id 7"),
        ({"Action": "ObRootServiceInfo", "ObCluster": "hooray", "version": "x"}, 400, "version"),
        ({"Action": "GetObProxyConfig", "ObproxyClusterName": "nope"}, 404, "'nope'"),
        ({"Action": "GetObProxyConfig", "VersionOnly": "abc"}, 400, "VersionOnly"),
    ]
    for params, status, words in cases:
        answer = services(registered, **params)
        assert answer.status_code == status, (params, answer.text)
        body = answer.json()
        assert set(body) == WRAPPER and body["Code"] == status and body["Success"] is False
        assert words in body["Message"] and body["Data"] is None, body


def test_version_moves_with_the_content_and_only_then(registered: ApiEnv) -> None:
    link_proxy_cluster(registered)

    def version(**params: str) -> str:
        answer = services(registered, Action="GetObProxyConfig", VersionOnly="true", **params)
        return str(answer.json()["Data"]["Version"])

    scoped = {"ObproxyClusterName": "OBProxy001"}
    first, first_all = version(**scoped), version()
    assert version(**scoped) == first and version() == first_all  # asked again: the same
    clusters = ObClusters(registered.engine)
    # The same entry registered again changes nothing obproxy reads.
    clusters.add(OB_CLUSTER_ID, OB_CLUSTER_NAME, rs_list="10.0.0.1:2882:2881", password=PASSWORD)
    assert version(**scoped) == first and version() == first_all
    # Root servers are in the cluster's own answer, whose timestamp moves; the list's content
    # (names and URLs) and so its Version stay, as ob-configserver's do.
    before = services(registered, Action="ObRootServiceInfo", ObCluster="hooray").json()["Data"]
    clusters.add(OB_CLUSTER_ID, OB_CLUSTER_NAME, rs_list="10.0.0.9:2881", password=PASSWORD)
    after = services(registered, Action="ObRootServiceInfo", ObCluster="hooray").json()["Data"]
    assert after["RsList"][0]["address"] == "10.0.0.9:2882"
    assert after["timestamp"] > before["timestamp"]
    assert version(**scoped) == first
    # A newly registered cluster changes the list of all; linked, the proxy cluster's list.
    clusters.add(9, "third", rs_list="10.0.9.1:2881", password=PASSWORD)
    assert version() != first_all and version(**scoped) == first
    with registered.client() as client:
        linked = client.post(
            "/api/v2/obproxy/clusters/1/obLinks/batchAdd",
            json=[{"clusterName": "third", "obClusterId": 9, "username": "proxyro"}],
        )
    assert linked.status_code == 200, linked.text
    assert version(**scoped) != first


def test_no_answer_carries_the_proxyro_password(registered: ApiEnv) -> None:
    link_proxy_cluster(registered)
    asked = [
        {"Action": "GetObProxyConfig"},
        {"Action": "GetObProxyConfig", "ObproxyClusterName": "OBProxy001"},
        {"Action": "GetObRootServiceInfoUrlTemplate"},
        {"Action": "ObRootServiceInfo", "ObCluster": "hooray"},
        {"Action": "ObRootServiceInfo", "ObCluster": "other", "version": "2"},
        {"Action": "ObIDCRegionInfo", "ObCluster": "hooray"},
    ]
    for params in asked:
        answer = services(registered, **params)
        assert answer.status_code == 200
        assert PASSWORD not in answer.text and "Proxyro" not in answer.text
    assert PASSWORD not in registered.server.log()


OBSERVER = {  # what an observer posts (ob-configserver's doc, its own cluster)
    "ObClusterId": 2,
    "ObRegionId": 2,
    "ObCluster": "obcluster2",
    "ObRegion": "obcluster2",
    "ReadonlyRsList": [],
    "RsList": [
        {"address": "10.0.2.1:2882", "role": "LEADER", "sql_port": 2881},
        {"address": "10.0.2.2:2882", "role": "FOLLOWER", "sql_port": 2881},
    ],
    "Type": "PRIMARY",
    "timestamp": 1652419587417171,
}


def test_registration_is_refused_unless_accepted(registered: ApiEnv) -> None:
    for action in ("ObRootServiceInfo", "ObRootServiceRegister"):
        refused = services(registered, "POST", Action=action, ObCluster="obcluster2", json=OBSERVER)
        assert refused.status_code == 403 and refused.json()["Code"] == 403
        assert "--accept-ob-register" in refused.json()["Message"]
    deleted = services(registered, "DELETE", Action="ObRootServiceInfo", ObCluster="hooray")
    assert deleted.status_code == 403
    assert ObClusters(registered.engine).find(2) is None
    reads = services(registered, "POST", Action="GetObProxyConfig")  # reads answer POST too
    assert reads.status_code == 200


def test_accepted_registration_creates_or_updates_root_servers_only(tmp_path: Path) -> None:
    db = str(tmp_path / "accepting.db")
    with Engine(db) as engine:
        ObClusters(engine).add(
            OB_CLUSTER_ID, OB_CLUSTER_NAME, rs_list="10.0.0.1:2881", password=PASSWORD
        )
    server = api_server.start(db, tmp_path / "serve.log", "--no-run", "--accept-ob-register")
    env = ApiEnv(server.url, db, None, server, "", "", "", "")  # type: ignore[arg-type]
    try:
        sealed_before = _sealed_password(db, OB_CLUSTER_ID)
        made = services(env, "POST", Action="ObRootServiceInfo", json=OBSERVER)
        assert made.status_code == 200 and made.json()["Data"] == "successful", made.text
        # OCP's action (obd calls it), updating hooray's root servers: its password stays.
        update = OBSERVER | {"ObClusterId": 1, "ObRegionId": 1, "ObCluster": "hooray"}
        update = update | {"ObRegion": "hooray"}
        updated = services(env, "POST", Action="ObRootServiceRegister", json=update)
        assert updated.status_code == 200, updated.text
        assert _sealed_password(db, OB_CLUSTER_ID) == sealed_before
        assert _sealed_password(db, 2) == ""  # registered without one
        with Engine(db) as engine:
            two = ObClusters(engine).get(2).to_ocp()
            one = ObClusters(engine).get(1)
        assert [(s["address"], s["role"]) for s in two["rootServers"]] == [
            ("10.0.2.1:2882", "LEADER"),
            ("10.0.2.2:2882", "FOLLOWER"),
        ]
        assert one.rs_list == "10.0.2.1:2882:2881;10.0.2.2:2882:2881"
        rs = services(env, Action="ObRootServiceInfo", ObCluster="obcluster2").json()["Data"]
        assert rs["RsList"] == OBSERVER["RsList"]
        bad = [
            ({"ObCluster": "x", "ObClusterId": 3, "RsList": []}, "RsList"),
            ({"ObCluster": "x", "RsList": OBSERVER["RsList"]}, "ObClusterId"),
            ({"ObClusterId": 3, "RsList": OBSERVER["RsList"]}, "ObCluster"),
            (OBSERVER | {"Type": "STANDBY"}, "Type"),
            (OBSERVER | {"RsList": [{"address": "10.0.2.1", "role": "LEADER", "sql_port": 1}]},
             "RsList[0].address"),
            (OBSERVER | {"RsList": [{"address": "10.0.2.1:1", "role": "BOSS", "sql_port": 1}]},
             "RsList[0].role"),
            (OBSERVER | {"ObCluster": "renamed", "ObRegion": "renamed"}, "registered as"),
            ("not an object", "JSON ObRootServiceInfo"),
        ]  # fmt: skip
        for body, words in bad:
            refused = services(env, "POST", Action="ObRootServiceInfo", json=body)
            assert refused.status_code == 400 and words in refused.json()["Message"], refused.text
        assert services(env, "DELETE", Action="ObRootServiceInfo", ObCluster="x").status_code == 501
    finally:
        assert server.stop() == 0


def _sealed_password(db: str, cluster_id: int) -> str:
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT proxy_password FROM ob_cluster WHERE id = ?", (cluster_id,))
        return str(row.fetchone()[0])


def on_hosts(host_ids: list[int]) -> dict[str, Any]:
    """The docs' sample create, as is but for hosts to install on."""
    install = {"hostIds": host_ids, "sqlPort": 2883, "exportPort": 2884}
    return sample_request() | {
        "obproxyInstallParam": install | {"version": "obproxy-4.3.2.0-1.el7.x86_64.rpm"}
    }


def test_config_url_on_hosts_needs_a_public_url_on_every_surface(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused at submit, naming the setting; nothing written. The hosts are registered, never
    reached (the refusal comes first): no sandbox is needed."""
    monkeypatch.setenv("OCPTASK_PACKAGE_DIR", str(PACKAGE_DIR))
    monkeypatch.delenv("OCPTASK_PUBLIC_URL", raising=False)
    db = str(tmp_path / "nourl.db")
    with Engine(db) as engine:
        ObClusters(engine).add(
            OB_CLUSTER_ID, OB_CLUSTER_NAME, rs_list="10.0.0.1:2881", password=PASSWORD
        )
        host = engine.hosts.add(
            {"name": "h1", "innerIpAddress": "127.0.0.119", "username": "u", "password": "unused"}
        )
        with pytest.raises(RequestInvalid) as embedded:
            create_cluster(engine, on_hosts([host.id]))
        (error,) = embedded.value.errors
        assert error.field == "workMode" and "public_url" in error.message
        assert engine.list() == []
    with Engine(db) as engine:
        Users(engine.store).add(API_USER, API_PASSWORD)  # the first user: an administrator
    server = api_server.start(db, tmp_path / "serve.log", "--no-run")
    try:
        with httpx.Client(base_url=server.url, auth=(API_USER, API_PASSWORD)) as client:
            answer = client.post("/api/v2/obproxy/clusters", json=on_hosts([host.id]))
        assert answer.status_code == 400
        error = answer.json()["error"]
        assert error["target"] == "workMode" and "--public-url" in error["message"]
    finally:
        assert server.stop() == 0
    request = tmp_path / "create.json"
    request.write_text(json.dumps(on_hosts([host.id])))
    cli = subprocess.run(
        [sys.executable, "-m", "cli", "obproxy", "create", "--db", db, str(request)],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert cli.returncode == 2 and "OCPTASK_PUBLIC_URL" in cli.stderr, cli.stderr
    assert "Traceback" not in cli.stderr
    with Engine(db) as engine:
        assert engine.list() == []


def test_a_name_two_clusters_share_is_listed_once(registered: ApiEnv) -> None:
    """obproxy refuses a whole answer that names a cluster twice: the lowest id stands."""
    ObClusters(registered.engine).add(3, "other", rs_list="10.0.3.1:2881", password=PASSWORD)
    data = services(registered, Action="GetObProxyConfig").json()["Data"]
    listed = [(e["ObRegion"], e["ObRootServiceInfoUrl"]) for e in data["ObRootServiceInfoUrlList"]]
    assert [name for name, _ in listed] == ["hooray", "other"]
    assert listed[1][1].endswith("ObCluster=other&ObClusterId=3")  # 3 < 7
    template = services(registered, Action="GetObRootServiceInfoUrlTemplate").json()["Data"]
    assert template["ObClusterList"] == ["hooray", "other"]
    both = services(registered, Action="ObRootServiceInfo", ObCluster="other", version="2")
    assert [c["ObClusterId"] for c in both.json()["Data"]] == [3, 7]  # version 2 lists all


def test_odd_inputs_get_its_wrapper_never_a_500(tmp_path: Path) -> None:
    db = str(tmp_path / "odd.db")
    server = api_server.start(db, tmp_path / "serve.log", "--no-run", "--accept-ob-register")
    env = ApiEnv(server.url, db, None, server, "", "", "", "")  # type: ignore[arg-type]
    try:
        cases = [
            ({"Action": "ObRootServiceInfo", "ObCluster": "a\x00b"}, None, 404),
            ({"Action": "ObRootServiceInfo", "ObCluster": "x" * 12_000}, None, 404),  # 16 KiB heads
            ({"Action": "GetObProxyConfig", "ObproxyClusterName": "\x00"}, None, 404),
            ({"Action": "ObRootServiceInfo", "ObClusterId": "1" * 40, "ObCluster": "a"}, None, 400),
            ({"Action": "ObRootServiceInfo"}, "[" * 100_000, 400),
            ({"Action": "ObRootServiceRegister"}, '{"ObCluster": "a\\ud800", "RsList": 1}', 400),
            ({"Action": "ObRootServiceRegister"}, b"\xff\xfe", 400),
        ]
        with httpx.Client(base_url=env.url, timeout=30) as client:
            for params, body, status in cases:
                method = "GET" if body is None else "POST"
                answer = client.request(method, "/services", params=params, content=body)
                assert answer.status_code == status, (params, answer.text[:300])
                assert set(answer.json()) == WRAPPER and len(answer.content) < 2000
        assert "Traceback" not in server.log()
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize(
    "url",
    ["ftp://h", "http://", "http://h:99999", "http://u:pw@h", "http://h/x?y=1", "http://[::1",
     "http://h/\x00", "http://h/" + "x" * 400],
)  # fmt: skip
def test_a_public_url_that_is_not_one_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="public URL") as refused:
        Engine("sqlite://", public_url=url)
    assert "pw" not in str(refused.value)  # a password typed in it is never echoed


def test_batch_add_records_the_config_url_or_is_refused_naming_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CONFIG_URL cluster created without hosts (the docs' sample) gets its config URL when
    its first OBProxies are submitted; without a public URL that submit is refused. ``--no-run``:
    the hosts are never reached, the submits are what is checked."""
    monkeypatch.setenv("OCPTASK_PACKAGE_DIR", str(PACKAGE_DIR))
    body = {"hostIds": [], "sqlPort": 2883, "exporterPort": 2884, "version": PACKAGE}
    for public in (False, True):
        db = str(tmp_path / f"add-{public}.db")
        with Engine(db) as engine:
            Users(engine.store).add(API_USER, API_PASSWORD)
            ObClusters(engine).add(1, "hooray", rs_list="10.0.0.1:2881", password=PASSWORD)
            host = engine.hosts.add(
                {"name": "h1", "innerIpAddress": "127.0.0.119", "username": "u", "password": "x"}
            )
            engine.run(create_cluster(engine, sample_request()).id, timeout=30)  # no public URL
        port = api_server.free_port()
        flags = ["--public-url", f"http://127.0.0.1:{port}"] if public else []
        server = api_server.start(
            db, tmp_path / f"serve-{public}.log", "--no-run", *flags, port=port
        )
        try:
            with httpx.Client(base_url=server.url, auth=(API_USER, API_PASSWORD)) as client:
                before = client.get("/api/v2/obproxy/clusters/1").json()["data"]
                assert before["configUrl"] is None  # no hosts: nothing was pointed anywhere yet
                add = body | {"hostIds": [host.id]}
                added = client.post("/api/v2/obproxy/clusters/1/obproxies/batchAdd", json=add)
                after = client.get("/api/v2/obproxy/clusters/1").json()["data"]
        finally:
            assert server.stop() == 0
        if public:
            assert added.status_code == 200, added.text
            assert after["configUrl"] == (
                f"http://127.0.0.1:{port}/services?Action=GetObProxyConfig&User_ID=alibaba"
                "&UID=admin&ObproxyClusterName=OBProxy001"
            )
            assert after["updateTime"] > before["updateTime"]
        else:
            error = added.json()["error"]
            assert added.status_code == 400 and error["target"] == "configUrl"
            assert "--public-url" in error["message"] and after["configUrl"] is None
            assert after["obproxies"] == []  # nothing of the refused submit was written


def test_the_console_shows_what_a_clusters_obproxies_are_served(registered: ApiEnv) -> None:
    link_proxy_cluster(registered)
    with httpx.Client(base_url=registered.url, follow_redirects=False) as session:
        console_login(session, registered.user, registered.password)
        page = session.get("/obproxy/1").text
    served = page[page.index('<table id="served">') :]
    served = served[: served.index("</table>")]
    assert "<td>hooray</td><td>1</td><td>10.0.0.1:2881</td>" in served
    assert "other" not in served  # linked to hooray only
    assert f"{registered.url}/services?Action=GetObProxyConfig" in page  # its config URL
