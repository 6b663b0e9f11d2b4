"""Hostile input at the HTTP API, found by review: none of it may reach the database as an error
(a 500), leak a credential into the log, or tell an anonymous caller which paths exist."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.auth.signer import OcpSigner
from api.auth.users import Users
from engine import Engine
from fixtures import api_server, sample_request
from tests.api_helpers import error_of
from tests.conftest import ApiEnv

BACKENDS = ["postgres"]


def test_bodies_python_reads_but_json_does_not(api_env: ApiEnv) -> None:
    with api_env.client() as client:
        for body in (b"[" * 200_000, b'{"name": "x", "port": NaN}', b'{"port": -Infinity}'):
            err = error_of(
                client.post(
                    "/api/v2/obproxy/clusters",
                    content=body,
                    headers={"Content-Type": "application/json"},
                ),
                400,
                10001,
            )
            assert err["subErrors"][0]["field"] == "(body)"
            assert "NaN" not in str(err["subErrors"][0].get("rejectedValue"))


def test_unknown_api_paths_need_a_login_first(api_env: ApiEnv) -> None:
    with httpx.Client(base_url=api_env.url) as anonymous:
        error_of(anonymous.get("/api/v2/no/such/thing"), 401, 0)
        error_of(anonymous.delete("/api/v2/tasks/instances"), 401, 0)
    with api_env.client() as client:
        error_of(client.get("/api/v2/no/such/thing"), 404, 10002)
        error_of(client.delete("/api/v2/tasks/instances"), 405, 10008)
    with httpx.Client(base_url=api_env.url) as anonymous:  # outside /api: the console's 404 page
        missing = anonymous.get("/nothing-here")
        assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]


def test_a_bare_token_is_not_logged(api_env: ApiEnv) -> None:
    token = "sk-live-abcdefghijklmnop"
    with httpx.Client(base_url=api_env.url, headers={"Authorization": token}) as client:
        error_of(client.get("/api/v2/tasks/instances"), 401, 0)
    assert token not in api_env.server.log() and "sk-live" not in api_env.server.log()


def test_non_ascii_ocp_headers_sign_the_same_on_both_sides(api_env: ApiEnv) -> None:
    signer = OcpSigner(api_env.access_key_id, api_env.access_key_secret)
    with httpx.Client(base_url=api_env.url, auth=signer) as client:
        headers = {"x-ocp-u": "café".encode(), "Content-Type": b"application/json"}
        response = client.get("/api/v2/tasks/instances", headers=headers)
        assert response.status_code == 200, response.text
        created = client.post("/api/v2/obproxy/clusters", json=sample_request())
        assert created.status_code == 200, created.text


@pytest.fixture
def pg_server(db_url: str, tmp_path: Path) -> Iterator[tuple[str, tuple[str, str], str, str]]:
    """``ocptask serve`` on a fresh PostgreSQL database (the engine fixture's backend)."""
    with Engine(db_url) as engine:
        Users(engine.store).add("admin", "admin-Passw0rd")
        ak, _ = Users(engine.store).create_access_key("admin")
    server = api_server.start(db_url, tmp_path / "serve.log")
    try:
        yield server.url, ("admin", "admin-Passw0rd"), ak, server.log_path.as_posix()
    finally:
        assert server.stop() == 0, server.log()[-2000:]


def test_postgres_refusals_are_not_server_errors(pg_server: tuple) -> None:
    """PostgreSQL refuses NUL in text and numbers past INTEGER: the API never lets them
    through to it as a 500."""
    url, basic, _, log_path = pg_server
    with httpx.Client(base_url=url, auth=basic) as client:
        for big in (2**31, 9_000_000_000_000, 2**63 - 1):
            error_of(client.get(f"/api/v2/tasks/instances/{big}"), 404, 20000)
            error_of(client.post(f"/api/v2/tasks/instances/{big}/retry"), 404, 20000)
            error_of(client.get(f"/api/v2/tasks/instances/1/subtasks/{big}/log"), 404, 20000)
            error_of(client.get(f"/api/v2/compute/hosts/{big}"), 404, 10002)
            error_of(client.get(f"/api/v2/obproxy/clusters/{big}"), 404, 10002)
            error_of(client.get(f"/api/v2/ob/clusters/{big}"), 404, 10002)
            batch = {
                "hostBasicDataList": [{"innerIpAddress": "127.0.0.9"}],
                "sshPort": 22,
                "credentialId": big,
            }
            err = error_of(client.post("/api/v2/compute/hosts/batchCreate", json=batch), 400, 10001)
            assert err["target"] == "credentialId"
        hosted = sample_request() | {
            "obproxyInstallParam": {
                "hostIds": [2**40],
                "sqlPort": 2883,
                "exportPort": 2884,
                "version": "obproxy-4.3.2.0-1.el7.x86_64.rpm",
            }
        }
        hosted["obLinks"][0]["obClusterId"] = 2**62
        err = error_of(client.post("/api/v2/obproxy/clusters", json=hosted), 400, 10001)
        assert {"obproxyInstallParam.hostIds[0]", "obLinks[0].obClusterId"} <= {
            e["field"] for e in err["subErrors"]
        }
        response = client.get("/api/v2/tasks/instances", params={"name": "a\x00b"})
        assert response.status_code < 500, response.text
    nul_user = base64.b64encode(b"ad\x00min:admin-Passw0rd").decode()
    with httpx.Client(base_url=url, headers={"Authorization": f"Basic {nul_user}"}) as client:
        error_of(client.get("/api/v2/tasks/instances"), 401, 0)
    assert "Traceback" not in Path(log_path).read_text()
