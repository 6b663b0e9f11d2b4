"""What the HTTP API tests share: waiting on a task, reading an error envelope, the CLI."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
ENVELOPE_KEYS = {"successful", "timestamp", "duration", "status", "traceId", "server"}


def wait_task(client: httpx.Client, task_id: int, timeout: float = 150) -> dict[str, Any]:
    """Poll the task until nothing of it runs (the server runs tasks itself)."""
    deadline = time.monotonic() + timeout
    while True:
        data = client.get(f"/api/v2/tasks/instances/{task_id}").json()["data"]
        if data["status"] != "RUNNING":
            return data
        assert time.monotonic() < deadline, f"task {task_id} still RUNNING: {data}"
        time.sleep(0.2)


def data_of(response: httpx.Response) -> Any:
    """The ``data`` of a success envelope, after checking the envelope."""
    body = response.json()
    assert response.status_code == 200, body
    assert body["successful"] is True and set(body) == ENVELOPE_KEYS | {"data"}
    return body["data"]


def error_of(response: httpx.Response, status: int, code: int) -> dict[str, Any]:
    """The ``error`` of an error envelope, after checking the envelope, status and code."""
    body = response.json()
    assert response.status_code == status, body
    assert set(body) == ENVELOPE_KEYS | {"error"} and body["successful"] is False
    assert body["status"] == status and body["error"]["code"] == code, body
    return body["error"]


def run_cli(db: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``ocptask ARGS --db DB`` in its own process, as an operator would type it."""
    return subprocess.run(
        [sys.executable, "-m", "cli", *args, "--db", db],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


def console_login(client: httpx.Client, name: str, password: str, after: str = "/tasks") -> str:
    """Log ``client`` (``follow_redirects=False``) in through the console's form, as a browser
    does; where the form sent it after."""
    import re

    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert token is not None
    form = {"username": name, "password": password, "csrf": token.group(1), "next": after}
    answer = client.post("/login", data=form)
    assert answer.status_code == 303, answer.text
    return str(answer.headers["location"])
