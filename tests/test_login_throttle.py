"""The budgets of failed logins on a real ``ocptask serve``: 10 failures a minute per user name,
30 per client address (README, ``api.auth.throttle``). The numbers are written here, not read
from the code: a changed budget fails these tests. Past a budget the answer is 429 without a
check; a flood against one name, or from one address, never refuses another user's correct
password; a concurrent burst gets no more checks than the budget."""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.auth.passwords import PasswordChecks
from api.auth.roles import Roles
from api.auth.signer import OcpSigner
from api.auth.throttle import FailedLogins, Throttled
from api.auth.users import User, Users
from engine import Engine
from fixtures import api_server
from tests.api_helpers import console_login, error_of
from tests.conftest import ApiEnv

TASKS = "/api/v2/tasks/instances"


def _add_user(env: ApiEnv, name: str) -> tuple[str, str]:
    password = f"{name}-Passw0rd"
    Roles(env.engine.store).add_user(Users(env.engine.store), name, password)  # a viewer
    return name, password


def _status(url: str, auth: tuple[str, str], headers: dict[str, str] | None = None) -> int:
    with httpx.Client(base_url=url, auth=auth, timeout=60) as client:
        return client.get(TASKS, headers=headers).status_code


def _console_login(url: str, name: str, password: str, after: str = "/obproxy") -> str:
    """Where the console's login form sends the browser (its ``Location``)."""
    with httpx.Client(base_url=url, follow_redirects=False, timeout=60) as browser:
        return console_login(browser, name, password, after)


def test_the_31st_wrong_password_from_one_address_is_refused_for_the_names_that_failed(
    api_env: ApiEnv,
) -> None:
    # 30 failures from 127.0.0.1, six at each of five names (under their budget of 10); each
    # claims another address in X-Forwarded-For, which no one is trusted to say here.
    for i in range(30):
        guesser = (f"guess{i % 5}", f"wrong-{i}")
        headers = {"X-Forwarded-For": f"10.1.0.{i}"}
        with httpx.Client(base_url=api_env.url, auth=guesser, headers=headers) as client:
            error_of(client.get(TASKS), 401, 0)
    with httpx.Client(base_url=api_env.url, auth=("guess0", "wrong-31")) as client:
        throttled = client.get(TASKS)
        error_of(throttled, 429, 0)
        assert 1 <= int(throttled.headers["Retry-After"]) <= 61
        error_of(client.get("/api/v2/no/such/path"), 429, 0)  # not a 500 off the 404 path
    assert _console_login(api_env.url, "guess1", "wrong-32").endswith("&error=throttled")
    # Other users' correct passwords, never verified before, from the same address: let in.
    assert _console_login(api_env.url, api_env.user, api_env.password) == "/obproxy"
    assert _status(api_env.url, _add_user(api_env, "bob")) == 200
    # A name new to this address is checked once (its failure is its own), then refused.
    assert _status(api_env.url, ("newcomer", "wrong-33")) == 401
    assert _status(api_env.url, ("newcomer", "wrong-34")) == 429
    assert "too many failed logins" in api_env.server.log()
    assert "wrong-3" not in api_env.server.log()


@pytest.fixture
def proxied(api_env: ApiEnv, tmp_path: Path) -> Iterator[str]:
    """A second ``serve`` of ``api_env``'s database that believes X-Forwarded-For from
    127.0.0.2 only (requests sent from that address stand for a proxy's)."""
    server = api_server.start(
        api_env.db, tmp_path / "proxied.log", "--no-run", "--forwarded-allow-ips", "127.0.0.2"
    )
    try:
        yield server.url
    finally:
        assert server.stop() == 0, server.log()[-2000:]


def _via(url: str, proxy: str, client: str, auth: tuple[str, str]) -> int:
    """A request sent from ``proxy`` (a loopback address) on behalf of ``client``."""
    transport = httpx.HTTPTransport(local_address=proxy)
    headers = {"X-Forwarded-For": client}
    with httpx.Client(base_url=url, auth=auth, transport=transport, headers=headers) as http:
        return http.get(TASKS).status_code


def test_a_flood_against_one_name_locks_that_name_only(api_env: ApiEnv, proxied: str) -> None:
    carol, dave = _add_user(api_env, "carol"), _add_user(api_env, "dave")
    assert _via(proxied, "127.0.0.2", "10.2.0.1", api_env.basic) == 200  # verified now
    # Ten failures at one name, each from another client of the proxy: then 429 from anyone.
    for i in range(10):
        assert _via(proxied, "127.0.0.2", f"10.2.1.{i}", (api_env.user, f"x-{i}")) == 401
    assert _via(proxied, "127.0.0.2", "10.2.2.1", (api_env.user, "x-10")) == 429
    # Its password verified within the minute still passes; other names are not touched,
    # from the same clients (carol's has never been verified: it is checked).
    assert _via(proxied, "127.0.0.2", "10.2.1.0", api_env.basic) == 200
    assert _via(proxied, "127.0.0.2", "10.2.1.0", carol) == 200
    # A name's own failures lock it, its correct password too, for the rest of the minute.
    for i in range(10):
        assert _via(proxied, "127.0.0.2", "10.2.3.1", (dave[0], f"y-{i}")) == 401
    assert _via(proxied, "127.0.0.2", "10.2.3.2", dave) == 429
    # From a peer that is not the trusted proxy, X-Forwarded-For is not believed: thirty
    # failures of 127.0.0.1 claiming many addresses are that one address's.
    for i in range(30):
        assert _via(proxied, "127.0.0.1", f"10.3.0.{i}", (f"spray{i % 5}", f"z-{i}")) == 401
    assert _via(proxied, "127.0.0.1", "10.3.1.1", ("spray0", "z-31")) == 429
    assert _via(proxied, "127.0.0.2", "10.3.1.1", ("spray0", "z-32")) == 401  # another client


def test_a_burst_of_wrong_passwords_gets_the_budget_and_no_more(api_env: ApiEnv) -> None:
    """100 wrong passwords for one user at once: 10 checked (401), 90 refused (429). During
    the burst another user's correct password gets in, and signed calls keep being answered
    (their p99 is printed, not asserted: timings depend on the machine)."""
    bob = _add_user(api_env, "bob")
    start = threading.Barrier(102)
    statuses: dict[str, Counter[int]] = {"guesses": Counter(), "bob": Counter()}
    lock = threading.Lock()

    def send(client: httpx.Client, who: str) -> None:
        start.wait()
        status = client.get(TASKS).status_code
        with lock:
            statuses[who][status] += 1

    clients = [(httpx.Client(base_url=api_env.url, auth=bob, timeout=120), "bob")]
    for i in range(100):
        auth = (api_env.user, f"wrong-{i}")
        clients.append((httpx.Client(base_url=api_env.url, auth=auth, timeout=120), "guesses"))
    for client, _ in clients:
        client.get("/openapi.json")  # connected before: the burst is of logins only
    senders = [threading.Thread(target=send, args=sender) for sender in clients]
    for thread in senders:
        thread.start()
    latencies: list[float] = []
    durations: list[int] = []
    signer = OcpSigner(api_env.access_key_id, api_env.access_key_secret)
    with httpx.Client(base_url=api_env.url, auth=signer, timeout=60) as signed:
        for _ in range(50):  # the server warm, as one that has served a while
            assert signed.get(TASKS).status_code == 200
        start.wait()
        while any(t.is_alive() for t in senders) or len(latencies) < 50:
            began = time.perf_counter()
            answer = signed.get(TASKS)
            latencies.append(time.perf_counter() - began)
            assert answer.status_code == 200
            durations.append(answer.json()["duration"])  # the server's own count, in ms
    for thread in senders:
        thread.join()
    for client, _ in clients:
        client.close()
    assert statuses == {"guesses": {401: 10, 429: 90}, "bob": {200: 1}}
    p50, p99 = (statistics.quantiles(latencies, n=100, method="inclusive")[i] for i in (49, 98))
    served = statistics.quantiles(durations, n=100, method="inclusive")[98]
    print(f"\n{len(latencies)} signed GETs during 100 wrong passwords at once: p50 ", end="")
    print(f"{p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms (the server's own: {served:.0f} ms)")


def test_a_burst_checks_no_more_passwords_than_the_budget(tmp_path: Path) -> None:
    """What the 401s above cannot tell: how many scrypts ran (a check answered 429 after it
    ran would look the same from outside). Counted at ``Users.authenticate``."""
    with Engine(str(tmp_path / "users.db")) as engine:
        users = Users(engine.store)
        users.add("admin", "admin-Passw0rd")
        checked: list[str] = []
        authenticate = users.authenticate

        def counted(name: str, password: str) -> User | None:
            checked.append(name)
            return authenticate(name, password)

        users.authenticate = counted  # type: ignore[method-assign]
        passwords = PasswordChecks(users, FailedLogins())

        async def burst() -> list[object]:
            guesses = (passwords.check("10.0.0.1", "admin", f"wrong-{i}") for i in range(100))
            return await asyncio.gather(*guesses, return_exceptions=True)

        answers = asyncio.run(burst())
    assert len(checked) == 10
    assert sum(a is None for a in answers) == 10
    assert sum(isinstance(a, Throttled) for a in answers) == 90


def test_a_burst_of_one_correct_password_is_one_check(api_env: ApiEnv) -> None:
    """A client's first calls at once, with its correct password not yet verified: checked
    once, all let in (not 10 reserved and the rest refused as guesses)."""
    erin = _add_user(api_env, "erin")
    start = threading.Barrier(30)
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def call() -> None:
        with httpx.Client(base_url=api_env.url, auth=erin, timeout=120) as client:
            start.wait()
            status = client.get(TASKS).status_code
        with lock:
            statuses[status] += 1

    callers = [threading.Thread(target=call) for _ in range(30)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join()
    assert statuses == {200: 30}
