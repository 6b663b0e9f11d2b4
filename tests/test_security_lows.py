"""The smaller findings of an outsider's attack on a real ``ocptask serve`` (issue 24): names
and addresses that could forge terminal output or log lines, bodies and filters a database or a
UTF-8 encoder could not take, answers that could be cached or sniffed, a database other local
users could read. Each test failed on the code before the fix."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx
import pytest

from engine import Engine, RequestInvalid
from fixtures import sample_request
from tasks.obclusters.registry import ObClusters
from tasks.obproxy import create_cluster
from tests.conftest import ApiEnv

HOST = {"name": "h1", "innerIpAddress": "127.0.0.119", "username": "u", "password": "pw"}
FORGED = "fe80::2%\u001b[31mRED\u001b[0m\nFAKE-LOG-LINE"


def refused_at(call: object, field: str) -> str:
    with pytest.raises(RequestInvalid) as refused:
        call()  # type: ignore[operator]
    fields = {e.field: e.message for e in refused.value.errors}
    assert field in fields, fields
    return fields[field]


def test_an_address_zone_is_an_interface_name(engine: Engine) -> None:
    refused_at(lambda: engine.hosts.add(HOST | {"innerIpAddress": FORGED}), "innerIpAddress")
    refused_at(
        lambda: engine.hosts.add(HOST | {"innerIpAddress": "fe80::1%$(id)"}), "innerIpAddress"
    )
    assert engine.hosts.add(HOST | {"innerIpAddress": "fe80::1%eth0"}).inner_ip_address
    clusters = ObClusters(engine)
    add = clusters.add
    refused_at(lambda: add(1, "c", rs_list="fe80::1%$(id):2881", password="pw"), "rsList")
    refused_at(lambda: add(1, "c", rs_list="[fe80::1%a\nb]:2882:2881", password="pw"), "rsList")
    assert add(1, "c", rs_list="[fe80::1%eth0]:2882:2881", password="pw").id == 1


@pytest.mark.parametrize("text", ["a\u202eb", "a\u200bb", "a\u2066b", "a\ufeffb"])
def test_bidi_and_zero_width_characters_are_refused_in_names_and_values(
    engine: Engine, text: str
) -> None:
    refused_at(lambda: engine.hosts.add(HOST | {"name": text}), "name")
    refused_at(lambda: engine.hosts.add(HOST | {"alias": text}), "alias")
    request = sample_request() | {"parameters": [{"name": "client_tag", "value": text}]}
    refused_at(lambda: create_cluster(engine, request), "parameters[0].value")
    assert engine.list() == [] and engine.hosts.list() == []


def test_a_lone_surrogate_anywhere_in_a_body_is_a_400(api_env: ApiEnv) -> None:
    sample = '"obLinks": [], "name": "n", "workMode": "RS_LIST"'
    bodies = {
        '{"name": "a\\ud800", "obLinks": []}': "name",
        "{" + sample + ', "ignored": "\\udfff"}': "ignored",
        "{" + sample + ', "x\\ud800y": 1}': "(body)",
    }
    with api_env.client() as client:
        for body, field in bodies.items():
            answer = client.post(
                "/api/v2/obproxy/clusters",
                content=body.encode(),
                headers={"Content-Type": "application/json"},
            )
            assert answer.status_code == 400, answer.text
            assert answer.json()["error"]["target"] == field
    assert "Traceback" not in api_env.server.log()


def test_a_filter_no_value_could_mean_is_a_400(api_env: ApiEnv) -> None:
    with api_env.client() as client:
        for value in ("\x00", "a\x1b[31m", "\u202eevil"):
            answer = client.get("/api/v2/tasks/instances", params={"name": value})
            assert answer.status_code == 400, answer.text
            assert answer.json()["error"]["target"] == "name"
        assert client.get("/api/v2/tasks/instances", params={"name": "Install 装"}).is_success


def test_api_answers_are_never_cached_nor_sniffed(api_env: ApiEnv) -> None:
    with api_env.client() as client:
        answers = [
            client.get("/api/v2/tasks/instances"),
            client.get("/api/v2/tasks/instances/999999"),
            client.post("/api/v2/obproxy/clusters", json={}),
        ]
    with httpx.Client(base_url=api_env.url) as anonymous:
        answers.append(anonymous.get("/api/v2/tasks/instances"))
    assert [a.status_code for a in answers] == [200, 404, 400, 401]
    for answer in answers:
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["x-content-type-options"] == "nosniff"


def test_the_database_and_its_folder_are_the_owners_only(tmp_path: Path) -> None:
    folder = tmp_path / "new" / "ocptask"
    with Engine(str(folder / "ocptask.db")) as engine:
        create_cluster(engine, sample_request())  # a write: the WAL exists now
        made = [folder / "ocptask.db", folder / "ocptask.db-wal", folder / "ocptask.db-shm"]
        for path in made:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        engine.store.secrets.seal("x")  # the key file beside it
        key = folder / "secret.key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert os.access(folder / "ocptask.db", os.R_OK)


def test_secure_cookies_behind_a_tls_proxy(tmp_path: Path) -> None:
    """``serve --secure-cookies``: the console's cookies are Secure though the server itself is
    reached over plain HTTP (a TLS proxy in front); without it, over HTTP, they are not."""
    from api.auth.users import Users
    from fixtures import api_server

    db = str(tmp_path / "cookies.db")
    with Engine(db) as engine:
        Users(engine.store).add("admin", "admin-Passw0rd")
    for flags, secure in (([], False), (["--secure-cookies"], True)):
        server = api_server.start(db, tmp_path / "serve.log", "--no-run", *flags)
        try:
            with httpx.Client(base_url=server.url, follow_redirects=False) as browser:
                form = browser.get("/login")
                token = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
                login = {"username": "admin", "password": "admin-Passw0rd", "csrf": token}
                # sent as a browser behind the proxy sends it (httpx keeps a Secure one for https)
                pair = form.headers["set-cookie"].split(";", 1)[0]
                browser.cookies.clear()
                answer = browser.post("/login", data=login, headers={"Cookie": pair})
            assert answer.status_code == 303
            cookies = [form.headers["set-cookie"], answer.headers["set-cookie"]]
            assert all(("; secure" in c.lower()) is secure for c in cookies), cookies
        finally:
            assert server.stop() == 0


def test_managing_users_is_audited_without_a_password(tmp_path: Path) -> None:
    """OCP's user management events from the command line (the one surface that manages users):
    created, roles granted and revoked, password changed, an access key made and removed, the
    user removed, and a refused revoke; no password and no secret in any event."""
    import json
    import subprocess
    import sys

    from engine.audit import AuditEvents, EventFilter

    db = str(tmp_path / "users.db")
    root = Path(__file__).parent.parent

    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cli", *args, "--db", db],
            input=stdin, capture_output=True, text=True, cwd=root,
        )  # fmt: skip

    assert cli("user", "add", "admin", "--password-stdin", stdin="Admin-Passw0rd-1").returncode == 0
    assert cli("user", "add", "ops", "--password-stdin", stdin="Ops-Passw0rd-11").returncode == 0
    assert cli("user", "grant", "ops", "OPERATOR").returncode == 0
    assert cli("user", "revoke", "admin", "ADMIN").returncode == 2  # the last one: refused
    assert cli("user", "add", "ops", "--password-stdin", stdin="Ops-Passw0rd-22").returncode == 0
    made = cli("accesskey", "create", "ops", "--json")
    key = json.loads(made.stdout)
    assert cli("accesskey", "remove", key["accessKeyId"]).returncode == 0
    assert cli("user", "remove", "ops").returncode == 0
    with Engine(db) as engine:
        events, _ = AuditEvents(engine.store).page(EventFilter(), limit=50)
    shown = [(e["operationEvent"], e["resourceName"], e["status"]) for e in events][::-1]
    assert shown == [
        ("CREATE_USER", "admin", "SUCCESS"),
        ("CREATE_USER", "ops", "SUCCESS"),
        ("UPDATE_USER", "ops", "SUCCESS"),
        ("UPDATE_USER", "admin", "FAILED"),
        ("CHANGE_USER_PASSWORD", "ops", "SUCCESS"),
        ("CREATE_ACCESS_KEY", "ops", "SUCCESS"),
        ("DELETE_ACCESS_KEY", key["accessKeyId"], "SUCCESS"),
        ("DELETE_USER", "ops", "SUCCESS"),
    ]
    text = json.dumps(events, default=str)
    for secret in ("Passw0rd", key["accessKeySecret"]):
        assert secret not in text
    assert {e["eventType"] for e in events} == {"OCP_USER_MANAGEMENT"}


def test_the_oceanbase_registry_changes_are_audited_without_the_password(tmp_path: Path) -> None:
    import subprocess
    import sys

    from engine.audit import AuditEvents, EventFilter

    db, root = str(tmp_path / "registry.db"), Path(__file__).parent.parent
    secret = "Proxyro-Secret-99"

    def cli(*args: str) -> int:
        asks = ["--password-stdin"] if args[1] == "add" else []
        run = subprocess.run(
            [sys.executable, "-m", "cli", *args, "--db", db, *asks],
            input=secret, capture_output=True, text=True, cwd=root,
        )  # fmt: skip
        return run.returncode

    assert cli("obcluster", "add", "1", "hooray", "--rs-list", "10.0.0.1:2881") == 0
    assert cli("obcluster", "add", "1", "hooray", "--rs-list", "not a list") == 2
    assert cli("obcluster", "remove", "1") == 0
    with Engine(db) as engine:
        events, _ = AuditEvents(engine.store).page(EventFilter(), limit=10)
    shown = [
        (e["operationEvent"], e["resourceName"], e["status"], e["operatorName"]) for e in events
    ]
    assert shown[::-1] == [
        ("REGISTER_OB_CLUSTER", "hooray", "SUCCESS", "admin"),
        ("REGISTER_OB_CLUSTER", "hooray", "FAILED", "admin"),
        ("UNREGISTER_OB_CLUSTER", "hooray", "SUCCESS", "admin"),
    ]
    assert secret not in str(events)


def test_the_command_lines_own_registries_are_audited(tmp_path: Path) -> None:
    """Hosts imported, SSH credentials added and removed: events, never a password."""
    import json
    import subprocess
    import sys

    from engine.audit import AuditEvents, EventFilter

    db, root = str(tmp_path / "cli.db"), Path(__file__).parent.parent
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"hosts": [HOST | {"password": "Host-Secret-7"}]}))

    def cli(*args: str, stdin: str = "") -> int:
        run = subprocess.run(
            [sys.executable, "-m", "cli", *args, "--db", db],
            input=stdin, capture_output=True, text=True, cwd=root,
        )  # fmt: skip
        return run.returncode

    assert cli("host", "import", str(inventory)) == 0
    assert cli("credential", "add", "ops", "-u", "root", "--password-stdin", stdin="Ssh-7") == 0
    assert cli("credential", "remove", "1") == 0
    assert cli("credential", "remove", "1") == 3  # gone: refused, and recorded
    with Engine(db) as engine:
        events, _ = AuditEvents(engine.store).page(EventFilter(), limit=10)
    shown = [(e["operationEvent"], e["resourceName"], e["status"]) for e in events][::-1]
    assert shown == [
        ("ADD_HOSTS", "127.0.0.119", "SUCCESS"),
        ("ADD_CREDENTIAL", "ops", "SUCCESS"),
        ("DELETE_CREDENTIAL", None, "SUCCESS"),
        ("DELETE_CREDENTIAL", None, "FAILED"),
    ]
    assert "Host-Secret-7" not in str(events) and "Ssh-7" not in str(events)
