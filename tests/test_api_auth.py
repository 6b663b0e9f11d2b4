"""AK/SK against a real server, signed by a client written here from ocp-http-api.md §4 alone
(not with ocptask's own signer), plus Basic users and the CLI that makes users and keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
import pytest

from api.auth.users import Users
from fixtures import sample_request
from tests.api_helpers import run_cli
from tests.conftest import ApiEnv

ROOT = Path(__file__).resolve().parent.parent


def enc(text: str) -> str:
    return quote(text, safe="-._~")


def string_to_sign(
    method: str, url: str, headers: dict[str, str], body: bytes, *, host: str
) -> str:
    """§4 step by step: METHOD, md5, content type, date, host, x-ocp lines, path?query."""
    md5 = hashlib.md5(body).hexdigest().upper() if body else ""
    xocp = sorted((k.lower(), v) for k, v in headers.items() if k.lower().startswith("x-ocp"))
    parts = urlsplit(url)
    path = parts.path
    if parts.query:
        grouped: dict[str, list[str]] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            grouped.setdefault(key, []).append(value)
        path += "?" + "&".join(
            enc(k) + "=" + enc(",".join(sorted(v for v in grouped[k] if v)))
            for k in sorted(grouped)
        )
    return "\n".join(
        [
            method,
            md5,
            headers.get("Content-Type", ""),
            headers["Date"],
            host,
            "\n".join(f"{k}:{v}" for k, v in xocp),
            path,
        ]
    )


def signed(
    env: ApiEnv,
    method: str,
    url: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    date: datetime | None = None,
    secret: str | None = None,
    tamper: dict[str, object] | None = None,
) -> httpx.Response:
    """Sign (method, url, headers, body), then send it, with ``tamper`` changing what is sent
    after signing: body, url, a header or the date."""
    host = urlsplit(env.url).netloc
    sent = {
        "Content-Type": "application/json",
        "Date": format_datetime(date or datetime.now(UTC), usegmt=True),
        **(headers or {}),
    }
    message = string_to_sign(method, url, sent, body, host=host)
    mac = hmac.new((secret or env.access_key_secret).encode(), message.encode(), hashlib.sha1)
    sent["Authorization"] = (
        f"OCP-ACCESS-KEY-HMACSHA1 {env.access_key_id}:{base64.b64encode(mac.digest()).decode()}"
    )
    tamper = tamper or {}
    body = tamper.get("body", body)  # type: ignore[assignment]
    url = tamper.get("url", url)  # type: ignore[assignment]
    sent.update(tamper.get("headers", {}))  # type: ignore[arg-type]
    with httpx.Client(base_url=env.url, timeout=30) as client:
        request = client.build_request(method, url, content=body, headers=sent)
        return client.send(request)


def test_ocp_test_vectors() -> None:
    """OCP's own vectors, with the string built by the function the tests sign with."""
    key = "2fc0c299cc94c6be266f2ceece765d4d"
    body = b'{"name":"test01","description":"test","regionId":1}'
    assert hashlib.md5(body).hexdigest().upper() == "186974DB33A090A16D3E2CA35F547B56"
    post = string_to_sign(
        "POST",
        "/api/v2/compute/idcs",
        {
            "Content-Type": "application/json",
            "x-ocp-data": "A,1",
            "Date": "Tue, 17 Jan 2023 09:13:57 GMT",
        },
        body,
        host="ocp.alibaba.net:8080",
    )
    get = string_to_sign(
        "GET",
        "/api/v2/compute/idcs?size=100",
        {"Content-Type": "application/json;charset=utf-8", "Date": "Tue, 17 Jan 2023 04:14:02 GMT"},
        b"",
        host="ocp.alibaba.net:8080",
    )
    for message, expected in (
        (post, "XN8P+O+v3vUabB16ZCooq5wMJoY="),
        (get, "TsQD6HDOuZuJ409m0wdnZPmijlc="),
    ):
        mac = hmac.new(key.encode(), message.encode(), hashlib.sha1).digest()
        assert base64.b64encode(mac).decode() == expected
    # And ocptask's server-side function agrees on the same strings.
    from api.auth import signature

    assert signature.sign(key, post) == "XN8P+O+v3vUabB16ZCooq5wMJoY="


QUERY = "/api/v2/tasks/instances?name=Install%20obproxy&status=RUNNING%2CSUCCESSFUL&size=5"
X_OCP = {"x-ocp-data": "A,1", "X-Ocp-Trace": "z"}


def test_signed_requests_are_accepted(api_env: ApiEnv) -> None:
    created = signed(
        api_env, "POST", "/api/v2/obproxy/clusters", body=json.dumps(sample_request()).encode()
    )
    assert created.status_code == 200, created.text
    task = created.json()["data"]
    assert task["creator"] == api_env.user
    listed = signed(api_env, "GET", QUERY, headers=X_OCP)
    assert listed.status_code == 200, listed.text
    assert [t["id"] for t in listed.json()["data"]["contents"]] == [task["id"]]
    # An empty-body POST (an operation): authenticated, then refused for the task's state.
    retry = signed(api_env, "POST", f"/api/v2/tasks/instances/{task['id']}/retry")
    assert retry.status_code == 400 and retry.json()["error"]["code"] == 20003
    host = api_env.engine.hosts.add(
        {"name": "h1", "innerIpAddress": "127.0.0.9", "username": "u", "password": "p"}
    )
    deleted = signed(api_env, "DELETE", f"/api/v2/compute/hosts/{host.id}")
    assert deleted.status_code == 200 and "data" not in deleted.json(), deleted.text
    assert api_env.engine.hosts.list() == []


@pytest.mark.parametrize(
    "case",
    ["body", "path", "query value", "x-ocp header", "date", "old date", "wrong secret", "no date"],
)
def test_tampered_or_stale_requests_are_refused(api_env: ApiEnv, case: str) -> None:
    body = json.dumps(sample_request()).encode()
    url, method, kwargs = "/api/v2/obproxy/clusters", "POST", {"body": body}
    if case in ("path", "query value", "x-ocp header"):
        url, method, kwargs = QUERY, "GET", {"headers": X_OCP}
    tamper: dict[str, object] = {}
    if case == "body":
        tamper = {"body": body.replace(b"OBProxy001", b"OBProxy002")}
    elif case == "path":
        tamper = {"url": QUERY.replace("/tasks/instances", "/obproxy/clusters")}
    elif case == "query value":
        tamper = {"url": QUERY.replace("size=5", "size=6")}
    elif case == "x-ocp header":
        tamper = {"headers": {"x-ocp-data": "A,2"}}
    elif case == "date":
        later = datetime.now(UTC) + timedelta(seconds=1)
        tamper = {"headers": {"Date": format_datetime(later, usegmt=True)}}
    elif case == "old date":
        kwargs["date"] = datetime.now(UTC) - timedelta(minutes=16)
    elif case == "wrong secret":
        kwargs["secret"] = "0" * 32
    elif case == "no date":
        tamper = {"headers": {"Date": ""}}
    response = signed(api_env, method, url, tamper=tamper, **kwargs)  # type: ignore[arg-type]
    body_out = response.json()
    assert response.status_code == 401, body_out
    assert body_out["successful"] is False and body_out["error"]["code"] == 0
    assert api_env.engine.list() == []  # nothing was created
    assert api_env.access_key_secret not in api_env.server.log()


def test_unknown_access_key_and_removed_key(api_env: ApiEnv) -> None:
    assert signed(api_env, "GET", "/api/v2/tasks/instances").status_code == 200
    Users(api_env.engine.store).remove_access_key(api_env.access_key_id)
    assert signed(api_env, "GET", "/api/v2/tasks/instances").status_code == 401
    assert "unknown access key" in api_env.server.log()


def test_users_and_access_keys_from_the_cli(api_env: ApiEnv) -> None:
    ops_pw = "ops-Passw0rd\n"
    added = run_cli(
        api_env.db, "user", "add", "ops", "--role", "OPERATOR", "--password-stdin", stdin=ops_pw
    )
    assert added.returncode == 0, added.stderr
    made = run_cli(api_env.db, "accesskey", "create", "ops", "--json")
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)
    assert set(key) == {"accessKeyId", "accessKeySecret"}
    listed = run_cli(api_env.db, "accesskey", "list")
    assert key["accessKeyId"] in listed.stdout and key["accessKeySecret"] not in listed.stdout
    assert key["accessKeySecret"].encode() not in Path(api_env.db).read_bytes()
    assert b"ops-Passw0rd" not in Path(api_env.db).read_bytes()
    with httpx.Client(base_url=api_env.url, auth=("ops", "ops-Passw0rd")) as client:
        task = client.post("/api/v2/obproxy/clusters", json=sample_request()).json()["data"]
        assert task["creator"] == "ops"
    ops = ApiEnv(
        **{
            **api_env.__dict__,
            "user": "ops",
            "access_key_id": key["accessKeyId"],
            "access_key_secret": key["accessKeySecret"],
        }
    )
    assert signed(ops, "GET", "/api/v2/tasks/instances").status_code == 200
    removed = run_cli(api_env.db, "user", "remove", "ops")
    assert removed.returncode == 0, removed.stderr
    with httpx.Client(base_url=api_env.url, auth=("ops", "ops-Passw0rd")) as client:
        assert client.get("/api/v2/tasks/instances").status_code == 401
    assert signed(ops, "GET", "/api/v2/tasks/instances").status_code == 401
    short = run_cli(api_env.db, "user", "add", "x", "--password-stdin", stdin="short\n")
    assert short.returncode == 2 and "password" in short.stdout + short.stderr
