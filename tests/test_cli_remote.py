"""``--server``: the task and obproxy commands through a real ``ocptask serve`` print what they
print with ``--db`` on the server's own database, and every way of failing to use a server is
one line and exit 4 (or 2 for a URL that is not one)."""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from fixtures import api_server, install_request, register_ob_cluster
from fixtures import sandbox as sandbox_hosts

from .conftest import ApiEnv

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(300)


def ocptask(*args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    """``ocptask ARGS`` in its own process (piped, as in a script), with these variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OCPTASK_")}
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**clean, "OCPTASK_PACKAGE_DIR": str(ROOT / "fixtures" / "packages"), **env},
        timeout=240,
    )


def one_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_the_same_commands_print_the_same_through_a_server(
    api_hosts: tuple[ApiEnv, list[int], dict], tmp_path: Path
) -> None:
    env, ids, sandbox = api_hosts
    register_ob_cluster(env.engine, "proxyro-Secret-4711")
    request = tmp_path / "create.json"
    request.write_text(json.dumps(install_request(ids)))
    remote = ("--server", env.url, "--user", env.user)
    password = {"OCPTASK_PASSWORD": env.password}
    local = ("--db", env.db)

    # A create through the server on a host whose sshd is down: the server runs it, the
    # command follows it to its end and exits 1 with the FAILED record.
    sandbox_hosts.stop_host(2, sandbox["state"])
    try:
        created = ocptask("obproxy", "create", str(request), *remote, **password)
    finally:
        sandbox_hosts.start_host(2, sandbox["state"])
    assert created.returncode == 1, created.stderr
    record = json.loads(created.stdout)
    assert record["status"] == "FAILED" and len(record["subtasks"]) == 32
    task_id = str(record["id"])
    failed = next(s for s in record["subtasks"] if s["status"] == "FAILED")

    reads = [
        ("task", "list"),
        ("task", "list", "--json", "--status", "failed"),
        ("task", "list", "--since", "1h", "--name", "obproxy"),
        ("task", "show", task_id),
        ("task", "show", task_id, "--json"),
        ("task", "log", task_id, str(failed["id"])),
        ("task", "graph", task_id, "--format", "mermaid"),
        ("task", "watch", task_id),
    ]
    for args in reads:
        mine, theirs = ocptask(*args, *local), ocptask(*args, *remote, **password)
        assert (mine.returncode, theirs.returncode) == ((1, 1) if "watch" in args else (0, 0))
        assert theirs.stderr == mine.stderr == "", args
        assert theirs.stdout == mine.stdout.replace(" ".join(local), " ".join(remote[:2])), args
    shown = ocptask("task", "show", task_id, *remote, **password).stdout
    assert "sandbox-2 (127.0.0.112)" in shown and "FAILED" in shown
    assert json.loads(ocptask("task", "show", task_id, "--json", *local).stdout) == record
    watched = ocptask("task", "watch", task_id, *remote, **password).stdout
    assert f"see: ocptask task log {task_id} {failed['id']} --server {env.url}" in watched

    # An access key signs instead of a password; the host is back, so the retry succeeds.
    signed = {"OCPTASK_ACCESS_SECRET": env.access_key_secret}
    retried = ocptask(
        "task", "retry", task_id, "--server", env.url, "--access-key", env.access_key_id, **signed
    )
    assert retried.returncode == 0, retried.stderr
    assert json.loads(retried.stdout)["status"] == "SUCCESSFUL"

    # Operations on the cluster go through the server too: refused the same way as locally
    # (a running OBProxy cannot be started), then a restart that succeeds.
    cluster_id, servers = _the_cluster(env)
    start = ("obproxy", "start", cluster_id, servers)
    refused_here, refused_there = ocptask(*start, *local), ocptask(*start, *remote, **password)
    assert one_line(refused_there, 2) == one_line(refused_here, 2)
    assert "RUNNING" in refused_there.stderr
    restarted = ocptask("obproxy", "restart", cluster_id, servers, *remote, **password)
    assert restarted.returncode == 0, restarted.stderr
    assert json.loads(restarted.stdout)["name"].startswith("Restart")


def _the_cluster(env: ApiEnv) -> tuple[str, str]:
    """The only OBProxy cluster's id and its OBProxies' ids, comma-separated."""
    with env.client() as client:
        (cluster,) = client.get("/api/v2/obproxy/clusters").json()["data"]["contents"]
    return str(cluster["id"]), ",".join(str(s["id"]) for s in cluster["obproxies"])


def test_a_server_that_cannot_be_used_is_one_line_and_exit_4(
    api_env: ApiEnv, tmp_path: Path
) -> None:
    url = api_env.url
    password = {"OCPTASK_PASSWORD": api_env.password}
    wrong = one_line(
        ocptask("task", "list", "--server", url, "--user", "admin", OCPTASK_PASSWORD="nope"), 4
    )
    assert f"{url} refused user 'admin'" in wrong and "nope" not in wrong
    bare = one_line(ocptask("task", "list", "--server", url), 4)
    assert "give --user or --access-key" in bare
    nobody = f"http://127.0.0.1:{api_server.free_port()}"
    down = one_line(ocptask("task", "show", "1", "--server", nobody, "--user", "a", **password), 4)
    assert f"cannot reach {nobody}" in down
    with _not_an_api() as other:
        odd = one_line(ocptask("task", "list", "--server", other, "--user", "a", **password), 4)
    assert "did not answer as OCP's API (HTTP 404, text/html)" in odd
    # Not a server URL at all, a URL with a password in it, both places at once, or both
    # credentials at once: refused input, and the password in the URL is not repeated.
    with_secret = url.replace("http://", "http://admin:Hush-1234@")
    for args in (
        ["--server", "ftp://example", "--user", "a"],
        ["--server", with_secret],
        ["--server", url, "--db", api_env.db, "--user", "a"],
        ["--server", url, "--user", "a", "--access-key", "b"],
    ):
        refused = one_line(ocptask("task", "list", *args, **password), 2)
        assert "--" in refused and "Hush-1234" not in refused
    # An id no task can have is "not found" through a server too, not refused input.
    assert "Task 0 does not exist" in one_line(
        ocptask("task", "show", "0", "--server", url, "--user", "admin", **password), 3
    )
    # No password anywhere and no terminal to ask on: refused, naming the variable.
    asked = one_line(ocptask("task", "list", "--server", url, "--user", "admin"), 2)
    assert "$OCPTASK_PASSWORD" in asked
    # $OCPTASK_SERVER is used when no --db is given; an unknown id is exit 3 as locally.
    unknown = ocptask("task", "show", "999", "--user", "admin", OCPTASK_SERVER=url, **password)
    assert one_line(unknown, 3) == one_line(ocptask("task", "show", "999", "--db", api_env.db), 3)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": " ", "workMode": "RS_LIST", "obLinks": []}))
    create = ("obproxy", "create", str(bad))
    there = one_line(ocptask(*create, "--server", url, "--user", "admin", **password), 2)
    assert there == one_line(ocptask(*create, "--db", api_env.db), 2)
    assert "name: must not be empty or only whitespace" in there


class _Html404(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<html>no</html>")

    def log_message(self, *_: Any) -> None:
        pass


class _not_an_api:
    """A web server on loopback that is not an API: it answers HTML."""

    def __enter__(self) -> str:
        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), _Html404)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __exit__(self, *_: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_the_task_list_filters_are_checked_alike(api_env: ApiEnv) -> None:
    """A bad status is refused by the one rule both places use, naming the field."""
    password = {"OCPTASK_PASSWORD": api_env.password}
    here = ocptask("task", "list", "--status", "DONE", "--db", api_env.db)
    there = ocptask(
        "task", "list", "--status", "DONE", "--server", api_env.url, "--user", "admin", **password
    )
    assert one_line(there, 2) == one_line(here, 2)
    assert re.search(r"status: must be among .*SUCCESSFUL", here.stderr)
