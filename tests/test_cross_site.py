"""Writes asked for by another site's page are refused (``api.auth.origin``), and a JSON
endpoint takes only JSON: against a real ``ocptask serve``, first with httpx sending what a
browser would send, then in a real Chromium holding Basic credentials for the server while a
page of another origin posts forms and ``no-cors`` fetches at it. Nothing may be written."""

from __future__ import annotations

import html
import json
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from api.auth.signer import OcpSigner
from fixtures import install_request, register_ob_cluster
from tests.api_helpers import data_of, error_of, wait_task
from tests.conftest import ApiEnv
from tests.test_console import chromium, until  # noqa: F401 (chromium: the module's browser)
from tests.test_plan import row_counts

pytestmark = pytest.mark.timeout(300)
CLUSTERS = "/api/v2/obproxy/clusters"
TASKS = "/api/v2/tasks/instances"
HOSTS = "/api/v2/compute/hosts"
EVIL = "http://evil.example"


def quiet_hosts(env: ApiEnv, first: int) -> list[int]:
    """Two hosts registered where no sshd listens (a task on them fails at its first SSH
    contact)."""
    entries = [
        {"name": f"quiet{i}", "innerIpAddress": f"127.0.0.{i}", "username": "admin"}
        | {"password": "never-used", "trustOnFirstUse": True}
        for i in (first, first + 1)
    ]
    return [env.engine.hosts.add(entry).id for entry in entries]


@pytest.fixture
def env(api_env: ApiEnv) -> ApiEnv:
    """The server, with the OceanBase cluster the sample request links."""
    register_ob_cluster(api_env.engine, "proxyro-Secret-4711")
    return api_env


def failed_create(client: httpx.Client, env: ApiEnv, **headers: str) -> dict[str, Any]:
    """A cluster created on quiet hosts: its task FAILED (one to retry and roll back)."""
    body = install_request(quiet_hosts(env, 80))
    failed = wait_task(client, data_of(client.post(CLUSTERS, json=body, headers=headers))["id"])
    assert (failed["status"], failed["operation"]) == ("FAILED", "EXECUTE")
    return failed


def writes(task: dict[str, Any], env: ApiEnv) -> list[tuple[str, str, Any]]:
    """A state-changing call of each kind: a JSON body, no body, PATCH, DELETE."""
    cluster = data_of(httpx.get(env.url + CLUSTERS, auth=env.basic))["contents"][0]["id"]
    subtask = next(s["id"] for s in task["subtasks"] if s["status"] == "FAILED")
    free = quiet_hosts(env, 90)
    return [
        ("POST", CLUSTERS, install_request(free, name="cross-site")),
        ("POST", f"{TASKS}/{task['id']}/retry", None),
        ("POST", f"{TASKS}/{task['id']}/rollback", None),
        ("POST", f"{TASKS}/{task['id']}/subtasks/{subtask}/skip", None),
        ("PATCH", f"{CLUSTERS}/{cluster}", {"address": "evil.example"}),
        ("DELETE", f"{CLUSTERS}/{cluster}", None),
        ("DELETE", f"{HOSTS}/{free[0]}", None),
        ("POST", f"{HOSTS}/batchDelete", {"hostIds": free}),
    ]


def test_a_change_from_another_origin_is_refused_and_writes_nothing(env: ApiEnv) -> None:
    own = env.url
    port = urlsplit(own).port or 80
    with env.client() as client:
        # A browser on this server's own page, with Basic: its changes go through.
        task = failed_create(client, env, Origin=own, **{"Sec-Fetch-Site": "same-origin"})
        calls = writes(task, env)
        before = row_counts(env.db)
        browsers = [
            {"Origin": EVIL},
            {"Origin": "null"},  # a sandboxed frame, a data: URL
            {"Origin": f"http://127.0.0.1:{port + 1}"},  # another port: another origin
            {"Origin": f"http://localhost:{port}"},  # another name for the host: not ours
            {"Origin": f"https://127.0.0.1:{port}"},  # another scheme
            {"Origin": own + "/api"},  # not an origin at all
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site"},  # a sibling subdomain, another port
            {"Origin": own, "Sec-Fetch-Site": "cross-site"},  # either says so: refused
        ]
        signed = env.client(auth=OcpSigner(env.access_key_id, env.access_key_secret))
        with signed:
            for headers in browsers:
                for method, path, body in calls:
                    for caller in (client, signed):
                        answer = caller.request(method, path, json=body, headers=headers)
                        error = error_of(answer, 403, 0)
                        assert "another origin" in error["message"], (method, path, headers)
            # A wrong password from another origin: refused the same, before it is checked.
            wrong = httpx.post(
                own + f"{TASKS}/{task['id']}/retry", auth=("admin", "wrong"), headers=browsers[0]
            )
            error_of(wrong, 403, 0)
        assert row_counts(env.db) == before
        # Reads answer anyone (a page of another origin cannot read the answer without CORS).
        read = client.get(f"{TASKS}/{task['id']}", headers={"Origin": EVIL})
        assert data_of(read)["operation"] == "EXECUTE"
        # OCP's clients send no Origin: unchanged.
        retried = data_of(client.post(f"{TASKS}/{task['id']}/retry"))
        assert retried["operation"] == "RETRY"
        assert wait_task(client, task["id"])["status"] == "FAILED"
        # Nor does a user's own navigation (Sec-Fetch-Site: none) count as another site.
        none = client.post(f"{TASKS}/{task['id']}/rollback", headers={"Sec-Fetch-Site": "none"})
        assert data_of(none)["operation"] == "ROLLBACK"


def test_the_origin_is_compared_with_the_host_the_request_names(env: ApiEnv) -> None:
    """Behind a name (the Host header), the scheme's default port is the same origin."""
    host_ids = quiet_hosts(env, 80)
    plan = f"{CLUSTERS}?plan=true"  # passes every check, writes nothing
    with env.client() as client:
        for origin, host, status in [
            ("http://ocp.example.com", "ocp.example.com", 200),
            ("http://ocp.example.com:80", "ocp.example.com", 200),
            ("http://OCP.example.com", "ocp.example.com:80", 200),
            ("http://[::1]:8080", "[::1]:8080", 200),
            ("https://ocp.example.com", "ocp.example.com", 403),
            ("http://ocp.example.com:8080", "ocp.example.com", 403),
            ("http://ocp.example.com", "other.example.com", 403),
            ("http://ocp.example.com", "ocp.example.com:x", 403),
        ]:
            answer = client.post(
                plan, json=install_request(host_ids), headers={"Origin": origin, "Host": host}
            )
            assert answer.status_code == status, (origin, host, answer.text)


def test_a_json_endpoint_takes_only_json(env: ApiEnv) -> None:
    """What a form (text/plain, urlencoded, multipart) or a no-cors fetch can send is refused
    with OCP's 415 before it is read, even when the bytes are the JSON of a good request."""
    body = json.dumps(install_request(quiet_hosts(env, 80))).encode()
    before = row_counts(env.db)
    with env.client() as client:
        for content_type in (
            "text/plain",
            "text/plain;charset=UTF-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            None,
        ):
            headers = {"Content-Type": content_type} if content_type else {}
            for path in (CLUSTERS, f"{HOSTS}/batchCreate", f"{CLUSTERS}/1"):
                method = "PATCH" if path.endswith("/1") else "POST"
                answer = client.request(method, path, content=body, headers=headers)
                error = error_of(answer, 415, 10003)
                assert "Content-Type: application/json" in error["message"], content_type
        assert row_counts(env.db) == before
        # The same bytes as JSON create the cluster.
        sent = client.post(CLUSTERS, content=body, headers={"Content-Type": "application/json"})
        assert data_of(sent)["operation"] == "EXECUTE"
        assert data_of(client.get(CLUSTERS))["page"]["totalElements"] == 1


# -- in a real Chromium ---------------------------------------------------------------------


class QuietPages(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def other_origins(tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    """Two web servers of other origins, serving one directory: 127.0.0.1 on another port
    (the same site: Chromium sends it the server's Basic credentials even from a ``no-cors``
    fetch) and 127.0.0.2 (another site: only its top-level form posts carry them)."""
    pages = tmp_path / "evil"
    pages.mkdir()
    servers = [
        ThreadingHTTPServer((address, 0), partial(QuietPages, directory=str(pages)))
        for address in ("127.0.0.1", "127.0.0.2")
    ]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield pages, [f"http://{s.server_address[0]}:{s.server_address[1]}" for s in servers]
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def text_form(action: str, body: dict[str, Any]) -> str:
    """A form whose text/plain encoding (``name=value``) is ``body``'s JSON: the name holds
    the JSON up to a last string field, the value closes it."""
    raw = json.dumps(body)[:-1] + ', "pad": "'
    return (
        f'<form method="POST" enctype="text/plain" action="{html.escape(action)}">'
        f'<input type="hidden" name="{html.escape(raw)}" value="&quot;}}"></form>'
    )


@pytest.mark.xdist_group("services")  # in turn with the console's browser tests
def test_a_page_of_another_origin_writes_nothing_through_cached_basic_credentials(
    chromium: Any,  # noqa: F811
    env: ApiEnv,
    other_origins: tuple[Path, list[str]],
) -> None:
    pages, origins = other_origins
    api = env.url
    with env.client() as client:
        task = failed_create(client, env)
    host_ids = quiet_hosts(env, 90)  # hosts free for another cluster
    retry, rollback = f"{api}{TASKS}/{task['id']}/retry", f"{api}{TASKS}/{task['id']}/rollback"
    # The browser answers the Basic prompt once: credentials in the address, which Chromium
    # sends in answer to the 401 and then keeps for the server, as if a user had typed them.
    chromium.get(f"http://{env.user}:{env.password}@{urlsplit(api).netloc}{TASKS}")
    assert '"successful":true' in chromium.find_element("tag name", "body").text
    before = row_counts(env.db)

    def nothing_written() -> None:
        assert row_counts(env.db) == before
        with env.client() as client:
            assert data_of(client.get(CLUSTERS))["page"]["totalElements"] == 1
            now = data_of(client.get(f"{TASKS}/{task['id']}"))
            assert (now["status"], now["operation"]) == ("FAILED", "EXECUTE")

    # 1. fetch in no-cors mode (no preflight), credentials included, with no body and with one.
    (pages / "fetch.html").write_text(
        "<script>Promise.allSettled(["
        f"fetch({json.dumps(retry)}, {{method: 'POST', mode: 'no-cors', credentials: 'include'}}),"
        f"fetch({json.dumps(api + CLUSTERS)}, {{method: 'POST', mode: 'no-cors', "
        f"credentials: 'include', headers: {{'Content-Type': 'text/plain'}}, "
        f"body: {json.dumps(json.dumps(install_request(host_ids, name='by-fetch')))}}}),"
        "]).then(() => { document.title = 'sent' })</script>"
    )
    # 2. auto-submitted forms: a JSON body as text/plain, and an empty one (a call needs none).
    forms = {
        "create": text_form(api + CLUSTERS, install_request(host_ids, name="by-form")),
        "rollback": f'<form method="POST" action="{html.escape(rollback)}"></form>',
    }
    for name, form in forms.items():
        (pages / f"{name}.html").write_text(f"{form}<script>document.forms[0].submit()</script>")
    for origin in origins:
        chromium.get(origin + "/fetch.html")
        until(lambda: chromium.title == "sent", 30)  # both answered
        nothing_written()
        for name in forms:
            chromium.get(f"{origin}/{name}.html")
            until(lambda: chromium.current_url.startswith(api), 30)
            answer = json.loads(chromium.find_element("tag name", "body").text)
            assert answer["status"] == 403, (origin, name, answer)
            assert "another origin" in answer["error"]["message"]
            nothing_written()

    # The server's own page, same browser, same credentials: a change goes through.
    chromium.get(api + TASKS)
    chromium.execute_script(
        f"fetch({json.dumps(retry)}, {{method: 'POST'}})"
        ".then(r => { document.title = 'retried ' + r.status })"
    )
    until(lambda: chromium.title == "retried 200", 30)
    with env.client() as client:
        assert data_of(client.get(f"{TASKS}/{task['id']}"))["operation"] == "RETRY"
