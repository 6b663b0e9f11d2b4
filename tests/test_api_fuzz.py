"""Property-based fuzzing of the HTTP API over every operation of its own ``/openapi.json``.

Schemathesis generates requests (valid ones and, with its negative mode, invalid ones) for each
operation; each is sent to a real ``ocptask serve`` process signed with Basic, with an AK/SK
signature, with no credential, or with a garbage ``Authorization`` header. Every answer must be
OCP's envelope (ocp-http-api §1) with the HTTP status in it, never a 5xx nor FastAPI's
``{"detail": ...}``; and a refused request (any non-2xx) must not add or remove a row in any
table of the database. A few hand-written requests cover what generation does not reach: broken
JSON, a body over 1 MiB, unknown routes, wrong methods and ids that are not 64-bit numbers.
"""

from __future__ import annotations

import base64
import json
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import DataGenerationMethod

from api.auth.signer import OcpSigner
from tasks.obclusters.registry import ObClusters
from tests.conftest import ApiEnv

# schemathesis 3 uses jsonschema's deprecated RefResolver on every generated case.
pytestmark = pytest.mark.filterwarnings("ignore:jsonschema.*:DeprecationWarning")
MIN_REQUESTS = 1000
# Examples per operation: valid requests signed with Basic; invalid ones signed with Basic; valid
# ones with (no credential, a garbage one, an access key's signature over an unusable Date);
# valid ones signed with the access key. Generating JSON bodies costs far more than sending
# them, so operations with a body get fewer. Sized so that the whole run sends about 1,300
# requests over the 28 operations, as it sent about 1,150 over 18 before the lifecycle calls.
BUDGET = {"plain": (22, 16, (3, 3, 4), 3), "body": (14, 9, (2, 2, 2), 3)}
CREATE = ("POST", "/api/v2/obproxy/clusters")
MAX_CREATED = 12  # successful creates kept: each starts a (hostless, quick) task
HEX16 = re.compile(r"^[0-9a-f]{16}$")
FRAME = {"successful", "timestamp", "duration", "status", "traceId", "server"}
ERROR = {"code", "message", "subErrors"}
GARBAGE = st.one_of(
    st.sampled_from(
        [
            "Bearer abc.def.ghi",
            "Basic",
            "Basic  Zm9v",
            "Basic !!!not-base64!!!",
            "Basic " + base64.b64encode(b"no-colon").decode(),
            "Basic " + base64.b64encode(b"admin:wrong-password").decode(),
            "Basic " + base64.b64encode(b"nobody:admin-Passw0rd").decode(),
            "Basic " + base64.b64encode(b"\xff\xfe:\x00").decode(),
            "OCP-ACCESS-KEY-HMACSHA1",
            "OCP-ACCESS-KEY-HMACSHA1 nokey",
            "OCP-ACCESS-KEY-HMACSHA1 AAAAAAAAAAAAAAAA:c2lnbmF0dXJl",
            "ocp-access-key-hmacsha1 :",
            "Digest username=admin",
        ]
    ),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80).map(str.strip),
)
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def _rfc1123(moment: datetime, offset_minutes: int) -> str:
    sign, minutes = ("-" if offset_minutes < 0 else "+"), abs(offset_minutes)
    return (
        f"{DAYS[moment.weekday()]}, {moment.day:02d} {MONTHS[moment.month - 1]} "
        f"{moment.year:04d} {moment:%H:%M:%S} {sign}{minutes // 60:02d}{minutes % 60:02d}"
    )


# Date headers a correctly signed request may carry and still be refused: none is within 15
# minutes of now (no year near the present; the first and last instants Python has, with
# offsets that take them out of range in UTC), some are not dates at all.
STALE_DATE = st.one_of(
    st.builds(
        _rfc1123,
        st.sampled_from([datetime.min, datetime.max.replace(microsecond=0)])
        | st.datetimes(max_value=datetime(2000, 1, 1))
        | st.datetimes(min_value=datetime(2100, 1, 1)),
        st.sampled_from([0, 60, -60, 1439, -1439, -1, 330]),
    ),
    st.builds(
        "{}, {:d} {} {} {:02d}:{:02d}:{:02d} {}".format,
        st.sampled_from(["Mon", "Xyz"]),
        st.integers(0, 99),
        st.sampled_from(["Jan", "Foo"]),
        st.integers(0, 10**6),
        st.integers(0, 99),
        st.integers(0, 99),
        st.integers(0, 99),
        st.sampled_from(["GMT", "UTC", "-0000", "EST"]) | st.text("+-0123456789", min_size=1),
    ),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40),
)


@dataclass
class Fuzz:
    """The server, its database's row counts as last seen, and what was sent so far."""

    env: ApiEnv
    http: httpx.Client
    db: sqlite3.Connection
    snapshot: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    per_operation: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    created: int = 0

    def counts(self) -> dict[str, int]:
        tables = [
            row[0]
            for row in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if row[0] != "audit_event"  # a refusal is recorded as an event, by design
        ]
        return {t: self.db.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}

    def settle(self) -> None:
        """Wait until no task is running and the row counts hold still, then remember them.

        A successful create or operation starts a task in the server's daemon, whose rows come
        after the answer; the check of the next refused request must not see them."""
        deadline = time.monotonic() + 30
        previous = None
        while True:
            running = self.db.execute(
                "SELECT COUNT(*) FROM task_instance WHERE status = 'RUNNING'"
            ).fetchone()[0]
            now = self.counts()
            if not running and now == previous:
                break
            assert time.monotonic() < deadline, f"tasks still running after 30 s: {now}"
            previous = now
            time.sleep(0.05)
        self.snapshot = now

    def send(
        self, request: httpx.Request, label: tuple[str, str, str], auth: Any = None
    ) -> httpx.Response:
        """Send one request and check its answer and the database against the snapshot.

        ``label`` is (method, path template, how it is signed): a request with a valid
        credential is never refused as unauthenticated, one without is always."""
        self.sent += 1
        self.per_operation[label] += 1
        try:
            response = self.http.send(request, auth=auth) if auth else self.http.send(request)
        except httpx.TransportError as exc:
            pytest.fail(
                f"{request.method} {request.url}: no answer ({exc!r})\n"
                f"server log tail:\n{self.env.server.log()[-6000:]}",
                pytrace=False,
            )
        self.statuses[response.status_code] += 1
        problem = envelope_problem(response)
        if problem is None and label[2] in ("basic", "signed") and response.status_code == 401:
            problem = "a request with a valid credential was refused as unauthenticated"
        refused = {401, 429} if label[2] == "garbage" else {401}  # 429: failed-login budget
        if (
            problem is None
            and label[2] in ("none", "garbage")
            and response.status_code not in refused
        ):
            problem = "a request without a valid credential was not refused with 401"
        if problem is None and not response.is_success:
            after = self.counts()
            if after != self.snapshot:
                changed = {
                    t: (self.snapshot.get(t), after.get(t))
                    for t in set(after) | set(self.snapshot)
                    if after.get(t) != self.snapshot.get(t)
                }
                problem = f"refused request changed row counts (before, after): {changed}"
        if problem is not None:
            pytest.fail(report(self.env, request, response, problem), pytrace=False)
        if response.is_success:
            if (request.method, label[1]) == CREATE:
                self.created += 1
            if request.method == "GET":
                self.snapshot = self.counts()
            else:
                self.settle()
        return response


def envelope_problem(response: httpx.Response) -> str | None:
    """What is wrong with this answer, if anything."""
    if response.status_code >= 500:
        return f"server error {response.status_code}"
    try:
        body = response.json()
    except ValueError:
        return "body is not JSON"
    if not isinstance(body, dict):
        return "body is not a JSON object"
    if "detail" in body:
        return "FastAPI's {'detail': ...} leaked"
    missing = FRAME - set(body)
    if missing:
        return f"envelope misses {sorted(missing)}"
    if body["status"] != response.status_code:
        return f"envelope status {body['status']} != HTTP {response.status_code}"
    if body["successful"] is not response.is_success:
        return f"successful={body['successful']!r} with HTTP {response.status_code}"
    if not isinstance(body["traceId"], str) or not HEX16.match(body["traceId"]):
        return f"traceId {body['traceId']!r} is not 16 hex digits"
    if not isinstance(body["duration"], int) or not isinstance(body["server"], str):
        return "duration or server has the wrong type"
    if not response.is_success:
        error = body.get("error")
        if not isinstance(error, dict) or ERROR - set(error):
            return f"error object missing or incomplete: {error!r}"
        if not isinstance(error["subErrors"], list) or not isinstance(error["message"], str):
            return f"error object has wrong types: {error!r}"
        if "data" in body:
            return "a refusal carries data"
    elif "error" in body:
        return "a success carries an error"
    return None


def report(env: ApiEnv, request: httpx.Request, response: httpx.Response, problem: str) -> str:
    headers = {
        k: ("<redacted>" if k.lower() == "authorization" else v) for k, v in request.headers.items()
    }
    return (
        f"{problem}\n"
        f"request: {request.method} {request.url}\n"
        f"request headers: {headers}\n"
        f"request body: {_body(request)[:2000]!r}\n"
        f"response: HTTP {response.status_code} {response.text[:2000]}\n"
        f"server log tail:\n{env.server.log()[-6000:]}"
    )


def _body(request: httpx.Request) -> bytes:
    try:
        return request.content
    except httpx.RequestNotRead:
        return b"<streamed>"


def to_httpx(case: schemathesis.Case, base_url: str) -> httpx.Request:
    """The generated case as bytes on the wire: requests encodes it (query lists, JSON body,
    quoted path parameters) exactly as schemathesis would send it, httpx sends it."""
    kwargs = case.as_transport_kwargs(base_url=base_url)  # requests is the transport
    prepared = requests.Request(**kwargs).prepare()
    headers = {
        k: _latin1(v)
        for k, v in prepared.headers.items()
        if k.lower() not in ("content-length", "authorization") and _sendable(k, v)
    }
    body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
    assert prepared.url is not None and prepared.method is not None
    return httpx.Request(prepared.method, prepared.url, headers=headers, content=body or b"")


TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def _sendable(name: str, value: str | bytes) -> bool:
    """Negative generation also makes headers that HTTP cannot carry (control characters, names
    that are not tokens): no client could send them, so they are left out of the request."""
    raw = _latin1(value)
    control = any((b < 0x20 and b != 0x09) or b == 0x7F for b in raw)
    return bool(TOKEN.match(name)) and not control and raw == raw.strip(b" \t")


def _latin1(value: str | bytes) -> bytes:
    """Header bytes as requests would send them (httpx would insist on ASCII)."""
    if isinstance(value, bytes):
        return value
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode()


@pytest.fixture
def fuzz(api_env: ApiEnv) -> Iterator[Fuzz]:
    ObClusters(api_env.engine).add(1, "fuzz-ob", rs_list="127.0.0.1:2882", password="proxyro-pw")
    db = sqlite3.connect(api_env.db, isolation_level=None, timeout=30)
    with httpx.Client(timeout=30) as http:
        state = Fuzz(api_env, http, db)
        state.settle()
        try:
            yield state
        finally:
            db.close()


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


@pytest.mark.timeout(400)
def test_every_operation_answers_in_the_envelope_and_refusals_write_nothing(fuzz: Fuzz) -> None:
    env = fuzz.env
    started = time.monotonic()
    # FastAPI writes OpenAPI 3.1; schemathesis 3 generates from it as 3.0 (only response
    # validation, unused here, would differ).
    schema = schemathesis.from_uri(f"{env.url}/openapi.json", force_schema_version="30")
    operations = [result.ok() for result in schema.get_all_operations()]
    listed = {(op.method.upper(), op.path) for op in operations}
    assert len(listed) >= 17, f"/openapi.json lists only {sorted(listed)}"
    basic = "Basic " + base64.b64encode(f"{env.user}:{env.password}".encode()).decode()
    signer = OcpSigner(env.access_key_id, env.access_key_secret)

    # Tasks and a cluster for the generated ids to find (hypothesis favours small numbers),
    # and creates refused at submit: unknown hosts, a name taken, a link to no cluster.
    def create(body: dict[str, Any]) -> int:
        request = httpx.Request(
            "POST",
            f"{env.url}{CREATE[1]}",
            json=body,
            headers={"Authorization": basic},
        )
        return fuzz.send(request, (*CREATE, "basic")).status_code

    install = {"hostIds": [1, 2], "sqlPort": 2883, "exportPort": 2884, "version": "4.2.1"}
    link = {"clusterName": "fuzz-ob", "obClusterId": 1, "username": "proxyro"}
    assert create({"name": "fuzz-1"}) == 200
    assert create({"name": "fuzz-2", "workMode": "RS_LIST", "obLinks": [link]}) == 200
    assert create({"name": "fuzz-3", "obproxyInstallParam": install}) == 400
    assert create({"name": "fuzz-1"}) == 400
    missing = {**link, "obClusterId": 2}
    assert create({"name": "fuzz-4", "obproxyInstallParam": install, "obLinks": [missing]}) == 400

    for op in operations:
        _fuzz_operation(fuzz, op, basic, signer)

    elapsed = time.monotonic() - started
    print(
        f"\nfuzz: {fuzz.sent} requests over {len(listed)} operations in {elapsed:.1f} s; "
        f"statuses {dict(sorted(fuzz.statuses.items()))}; {fuzz.created} clusters created"
    )
    for method, path in sorted(listed):
        for how in ("basic", "none", "garbage"):
            assert fuzz.per_operation[(method, path, how)] > 0, f"no {how} request: {method} {path}"
    assert fuzz.statuses[200] > 0 and fuzz.statuses[401] > 0 and fuzz.statuses[400] > 0
    assert fuzz.sent >= MIN_REQUESTS, f"only {fuzz.sent} requests sent"


def _fuzz_operation(fuzz: Fuzz, op: Any, basic: str, signer: OcpSigner) -> None:
    """Generated requests for one operation, each checked by ``Fuzz.send``."""
    env = fuzz.env
    name = (op.method.upper(), op.path)
    positive_n, negative_n, refused_n, signed_n = BUDGET["body" if op.body else "plain"]
    positive = op.as_strategy()
    negative = op.as_strategy(data_generation_method=DataGenerationMethod.negative)

    @_settings(positive_n)
    @given(case=positive)
    def valid(case: schemathesis.Case) -> None:
        request = to_httpx(case, env.url)
        if name == CREATE and fuzz.created >= MAX_CREATED:
            return  # enough tasks: the invalid and unauthenticated runs still cover it
        request.headers["Authorization"] = basic
        fuzz.send(request, (*name, "basic"))

    @_settings(negative_n)
    @given(case=negative)
    def invalid(case: schemathesis.Case) -> None:
        request = to_httpx(case, env.url)
        request.headers["Authorization"] = basic
        fuzz.send(request, (*name, "basic"))

    @_settings(refused_n[0])
    @given(case=positive)
    def anonymous(case: schemathesis.Case) -> None:
        fuzz.send(to_httpx(case, env.url), (*name, "none"))

    @_settings(refused_n[1])
    @given(case=positive, garbage=GARBAGE)
    def garbage(case: schemathesis.Case, garbage: str) -> None:
        request = to_httpx(case, env.url)
        request.headers["Authorization"] = garbage
        fuzz.send(request, (*name, "garbage"))

    @_settings(refused_n[2])
    @given(case=positive, date=STALE_DATE)
    def stale(case: schemathesis.Case, date: str) -> None:
        # Signed with the real access key, but over a Date the server must refuse.
        request = to_httpx(case, env.url)
        request.headers["Date"] = date
        fuzz.send(request, (*name, "garbage"), auth=signer)

    @_settings(signed_n)
    @given(case=positive)
    def signed(case: schemathesis.Case) -> None:
        if name == CREATE and fuzz.created >= MAX_CREATED:
            return
        fuzz.send(to_httpx(case, env.url), (*name, "signed"), auth=signer)

    for run in (valid, invalid, anonymous, garbage, stale, signed):
        run()


# -- hand-written refusals ---------------------------------------------------------------------


def _check(fuzz: Fuzz, request: httpx.Request, status: int) -> dict[str, Any]:
    response = fuzz.http.send(request)
    fuzz.sent += 1
    problem = envelope_problem(response)
    if problem is None and response.status_code != status:
        problem = f"expected HTTP {status}"
    if problem is None and fuzz.counts() != fuzz.snapshot:
        problem = "refused request changed row counts"
    if problem is not None:
        pytest.fail(report(fuzz.env, request, response, problem), pytrace=False)
    return response.json()  # type: ignore[no-any-return]


def test_hand_written_refusals_answer_in_the_envelope(fuzz: Fuzz) -> None:
    env = fuzz.env
    basic = "Basic " + base64.b64encode(f"{env.user}:{env.password}".encode()).decode()
    auth = {"Authorization": basic}
    json_type = {**auth, "Content-Type": "application/json"}

    def request(method: str, path: str, **kwargs: Any) -> httpx.Request:
        kwargs["headers"] = {**auth, **kwargs.get("headers", {})}
        return fuzz.http.build_request(method, f"{env.url}{path}", **kwargs)

    # Malformed JSON: 400 with a subError for the body.
    for raw in (b'{"name": "x",', b"{'name': 'x'}", b"\xff\xfe{}", b"[1, 2", b"nul"):
        body = _check(
            fuzz, request("POST", "/api/v2/obproxy/clusters", content=raw, headers=json_type), 400
        )
        assert body["error"]["code"] == 10001
        assert body["error"]["subErrors"], body
        assert body["error"]["subErrors"][0]["field"] == "(body)", body
    # An empty body where one is required.
    body = _check(fuzz, request("POST", "/api/v2/obproxy/clusters", headers=json_type), 400)
    assert body["error"]["subErrors"], body

    # Over 1 MiB: 413, whether announced by Content-Length or streamed in chunks.
    big = b'{"name": "' + b"x" * (1024 * 1024) + b'"}'
    _check(fuzz, request("POST", "/api/v2/obproxy/clusters", content=big, headers=json_type), 413)

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(big), 64 * 1024):
            yield big[i : i + 64 * 1024]

    streamed = request("POST", "/api/v2/obproxy/clusters", content=chunks(), headers=json_type)
    assert "content-length" not in streamed.headers
    _check(fuzz, streamed, 413)
    # The connection was closed after the 413s; a fresh one still works.
    assert fuzz.http.send(request("GET", "/api/v2/tasks/instances")).status_code == 200

    # A body that is not sent as JSON: 415, as OCP's Spring answers it.
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"Content-Type": content_type} if content_type else {}
        sent = request("POST", "/api/v2/obproxy/clusters", content=b"{}", headers=headers)
        assert ("content-type" in sent.headers) == bool(content_type)
        assert _check(fuzz, sent, 415)["error"]["code"] == 10003

    # Unknown routes: 404 (which /api paths exist is told to authenticated callers only).
    for path in ("/api/v2/nothing", "/api/v3/tasks/instances", "/api/v2/tasks/instances/1/x"):
        assert _check(fuzz, request("GET", path), 404)["error"]["code"] == 10002
        _check(fuzz, httpx.Request("GET", f"{env.url}{path}"), 401)
    outside = fuzz.http.send(httpx.Request("GET", f"{env.url}/nothing"))  # the console's
    assert outside.status_code == 404 and "text/html" in outside.headers["content-type"]

    # Wrong methods: 405.
    for method, path in (
        ("PUT", "/api/v2/tasks/instances"),
        ("DELETE", "/api/v2/tasks/instances/1"),
        ("GET", "/api/v2/tasks/instances/1/retry"),
        ("PATCH", "/api/v2/compute/hosts/1"),
        ("DELETE", "/api/v2/obproxy/clusters"),
    ):
        _check(fuzz, request(method, path), 405)

    # Ids that are not positive 64-bit numbers: 400 with the parameter named.
    for bad in ("abc", "1.5", "-1", "0", "1e3", str(2**64), str(2**63), "%20", "0x10"):
        for path in (
            f"/api/v2/tasks/instances/{bad}",
            f"/api/v2/tasks/instances/1/subtasks/{bad}/log",
            f"/api/v2/obproxy/clusters/{bad}",
            f"/api/v2/obproxy/clusters/{bad}/parameters",
            f"/api/v2/compute/hosts/{bad}",
            f"/api/v2/ob/clusters/{bad}",
        ):
            body = _check(fuzz, request("GET", path), 400)
            assert body["error"]["subErrors"], body
            assert body["error"]["subErrors"][0]["field"] in ("taskId", "subtaskId", "id", "hostId")
        _check(fuzz, request("POST", f"/api/v2/tasks/instances/{bad}/retry"), 400)
        _check(fuzz, request("DELETE", f"/api/v2/compute/hosts/{bad}"), 400)
    # The largest 64-bit id is a well-formed id of nothing.
    _check(fuzz, request("GET", f"/api/v2/tasks/instances/{2**63 - 1}"), 404)

    # A JSON body of the wrong shape, and an unauthenticated create with a valid body.
    for raw in ("[]", "1", '"x"', "null", '{"name": [5]}', '{"name": "a", "port": "2883.5"}'):
        body = _check(
            fuzz,
            request("POST", "/api/v2/obproxy/clusters", content=raw, headers=json_type),
            400,
        )
        assert body["error"]["subErrors"], body
    anonymous = httpx.Request(
        "POST", f"{env.url}/api/v2/obproxy/clusters", content=json.dumps({"name": "anon"})
    )
    assert _check(fuzz, anonymous, 401)["error"]["code"] == 0

    # AK/SK: a signed call is let in; one signed over a Date the server cannot use is a 401,
    # including the last instant of year 9999 west of UTC (past datetime's range in UTC).
    signer = OcpSigner(env.access_key_id, env.access_key_secret)
    listing = httpx.Request("GET", f"{env.url}/api/v2/tasks/instances?size=5")
    assert fuzz.http.send(listing, auth=signer).status_code == 200
    for date in (
        "Fri, 31 Dec 9999 23:59:59 -0100",
        "Fri, 31 Dec 9999 23:59:59 -2359",
        "Mon, 01 Jan 0001 00:00:00 +2359",
        "Tue, 17 Jan 2023 09:13:57 GMT",
        "Tue, 17 Jan 2023 09:13:57",
        "not a date",
    ):
        stale = httpx.Request("GET", f"{env.url}/api/v2/tasks/instances", headers={"Date": date})
        response = fuzz.http.send(stale, auth=signer)
        fuzz.sent += 1
        problem = envelope_problem(response)
        if problem is None and response.status_code != 401:
            problem = "expected HTTP 401"
        if problem is not None:
            pytest.fail(report(env, stale, response, problem), pytrace=False)
