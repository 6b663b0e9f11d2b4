"""Authentication rules a mutation check of the suite found untested (the whole suite passed with
each of them broken): the Date window of a signature to the half minute, a new password ending
what the old one opened, a CSRF token compared whole, and where a console login may lead."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from api.auth.signer import OcpSigner
from fixtures import sample_request
from tests.api_helpers import console_login, error_of, run_cli
from tests.conftest import ApiEnv

TASKS = "/api/v2/tasks/instances"


@pytest.mark.parametrize(
    ("offset", "status"),
    [
        (timedelta(minutes=-15, seconds=-30), 401),
        (timedelta(minutes=-14, seconds=-30), 200),
        (timedelta(minutes=15, seconds=30), 401),
        (timedelta(minutes=14, seconds=30), 200),
    ],
)
def test_a_signature_is_good_for_15_minutes_either_side(
    api_env: ApiEnv, offset: timedelta, status: int
) -> None:
    signer = OcpSigner(api_env.access_key_id, api_env.access_key_secret)
    date = format_datetime(datetime.now(UTC) + offset, usegmt=True)
    with httpx.Client(base_url=api_env.url, auth=signer) as client:
        assert client.get(TASKS, headers={"Date": date}).status_code == status


def _session_csrf(client: httpx.Client) -> str:
    page = client.get("/tasks")
    assert page.status_code == 200, page.headers.get("location")
    found = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def test_a_new_password_ends_the_old_one_and_its_sessions_at_once(api_env: ApiEnv) -> None:
    with api_env.client() as old:
        assert old.get(TASKS).status_code == 200  # verified now: remembered for a minute
        with httpx.Client(base_url=api_env.url, follow_redirects=False) as browser:
            assert console_login(browser, api_env.user, api_env.password) == "/tasks"
            csrf = _session_csrf(browser)
            changed = run_cli(
                api_env.db, "user", "add", api_env.user, "--password-stdin", stdin="new-Passw0rd\n"
            )
            assert changed.returncode == 0, changed.stderr
            error_of(old.get(TASKS), 401, 0)  # within the minute, and no 429 either
            gone = browser.get("/tasks")
            assert gone.status_code == 303 and gone.headers["location"].startswith("/login")
            body = sample_request()
            refused = browser.post(
                "/api/v2/obproxy/clusters", json=body, headers={"X-CSRF-Token": csrf}
            )
            error_of(refused, 401, 0)
    with api_env.client(auth=(api_env.user, "new-Passw0rd")) as new:
        assert new.get(TASKS).status_code == 200


def _flipped(token: str, at: int) -> str:
    """``token`` with one character changed: the same length, wrong."""
    swap = "A" if token[at] != "A" else "B"
    return token[:at] + swap + token[at + 1 :]


def test_a_csrf_token_of_the_right_length_but_wrong_is_refused(api_env: ApiEnv) -> None:
    with httpx.Client(base_url=api_env.url, follow_redirects=False) as browser:
        login_token = re.search(r'name="csrf" value="([^"]+)"', browser.get("/login").text)
        assert login_token is not None
        form = {"username": api_env.user, "password": api_env.password}
        forged = browser.post("/login", data={**form, "csrf": _flipped(login_token.group(1), -1)})
        assert forged.status_code == 403
        assert console_login(browser, api_env.user, api_env.password) == "/tasks"
        csrf = _session_csrf(browser)
        body = sample_request()
        for at in (0, len(csrf) // 2, -1):
            wrong = {"X-CSRF-Token": _flipped(csrf, at)}
            error_of(browser.post("/api/v2/obproxy/clusters", json=body, headers=wrong), 403, 0)
            assert browser.post("/logout", data={"csrf": _flipped(csrf, at)}).status_code == 403
        assert browser.get("/tasks").status_code == 200  # still logged in
        with api_env.client() as client:
            assert client.get("/api/v2/obproxy/clusters").json()["data"]["contents"] == []
        made = browser.post("/api/v2/obproxy/clusters", json=body, headers={"X-CSRF-Token": csrf})
        assert made.status_code == 200, made.text


EVIL_NEXT = [
    "https://evil.example/",
    "//evil.example",
    "/\\evil.example",
    "%2F%2Fevil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "\\\\evil.example",
    " //evil.example",
]


def test_a_console_login_never_leads_to_another_site(api_env: ApiEnv) -> None:
    with httpx.Client(base_url=api_env.url, follow_redirects=False) as browser:
        for after in EVIL_NEXT:
            assert console_login(browser, api_env.user, api_env.password, after) == "/tasks", after
            wrong = console_login(browser, api_env.user, "not-it", after)  # back to the form
            assert parse_qs(urlsplit(wrong).query)["next"] == ["/tasks"], after
            # The form itself, reached with it in its address, carries this site's path.
            form = browser.get("/login", params={"next": after}).text
            assert 'name="next" value="/tasks"' in form, after
        raw = browser.get("/login?next=%2F%2Fevil.example").text  # decoded: //evil.example
        assert 'name="next" value="/tasks"' in raw
        landed = console_login(browser, api_env.user, api_env.password, "/obproxy?x=1")
        assert landed == "/obproxy?x=1"
