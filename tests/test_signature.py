"""OCP AK/SK signature: OCP's own test vectors, and every canonicalisation rule on its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from api.auth import signature as sig
from api.auth.signer import OcpSigner

AK = "cqammmxBpfGjFlto"
SK = "2fc0c299cc94c6be266f2ceece765d4d"
HOST = "ocp.alibaba.net:8080"
POST_BODY = b'{"name":"test01","description":"test","regionId":1}'


def _post_vector_message() -> str:
    return sig.string_to_sign(
        method="POST",
        body=POST_BODY,
        content_type="application/json",
        date="Tue, 17 Jan 2023 09:13:57 GMT",
        host=HOST,
        headers=[("Content-Type", "application/json"), ("x-ocp-data", "A,1"), ("Host", HOST)],
        path="/api/v2/compute/idcs",
        raw_query="",
    )


def _get_vector_message() -> str:
    return sig.string_to_sign(
        method="GET",
        body=b"",
        content_type="application/json;charset=utf-8",
        date="Tue, 17 Jan 2023 04:14:02 GMT",
        host=HOST,
        headers=[("Content-Type", "application/json;charset=utf-8"), ("Host", HOST)],
        path="/api/v2/compute/idcs",
        raw_query="size=100",
    )


# --- OCP's documented test vectors -------------------------------------------------------------


def test_post_vector() -> None:
    message = _post_vector_message()
    assert sig.sign(SK, message) == "XN8P+O+v3vUabB16ZCooq5wMJoY="
    assert sig.verify(SK, "XN8P+O+v3vUabB16ZCooq5wMJoY=", message)


def test_get_vector() -> None:
    message = _get_vector_message()
    assert message.split("\n") == [
        "GET",
        "",
        "application/json;charset=utf-8",
        "Tue, 17 Jan 2023 04:14:02 GMT",
        HOST,
        "",
        "/api/v2/compute/idcs?size=100",
    ]
    assert sig.sign(SK, message) == "TsQD6HDOuZuJ409m0wdnZPmijlc="
    assert sig.verify(SK, "TsQD6HDOuZuJ409m0wdnZPmijlc=", message)


def test_verify_rejects_wrong_signature_secret_and_message() -> None:
    message = _post_vector_message()
    assert not sig.verify(SK, "TsQD6HDOuZuJ409m0wdnZPmijlc=", message)
    assert not sig.verify(SK + "x", "XN8P+O+v3vUabB16ZCooq5wMJoY=", message)
    assert not sig.verify(SK, "XN8P+O+v3vUabB16ZCooq5wMJoY=", message.replace("POST", "PUT"))
    assert not sig.verify(SK, "", message)


def test_body_md5_is_uppercase_hex_and_empty_for_empty_body() -> None:
    assert sig.body_md5(POST_BODY) == "186974DB33A090A16D3E2CA35F547B56"
    assert sig.body_md5(b"") == ""
    assert _post_vector_message().split("\n")[1] == "186974DB33A090A16D3E2CA35F547B56"


# --- canonical query ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", ""),
        ("size=100", "size=100"),
        ("b=2&a=1", "a=1&b=2"),
        ("q=a%20b", "q=a%20b"),
        ("q=a+b", "q=a%20b"),
        ("q=a,b", "q=a%2Cb"),
        ("q=a%2cb", "q=a%2Cb"),
        ("a=2&a=1", "a=1%2C2"),
        ("a=1&a=2", "a=1%2C2"),
        ("a=&a=1&a=", "a=1"),
        ("a=&b=1", "a=&b=1"),
        ("flag&b=1", "b=1&flag="),
        ("name=%C3%A9t%C3%A9", "name=%C3%A9t%C3%A9"),
        ("name=%c3%a9", "name=%C3%A9"),
        ("t=%7E-._", "t=~-._"),
        ("p=a/b:c", "p=a%2Fb%3Ac"),
        ("k%20y=v", "k%20y=v"),
    ],
)
def test_canonical_query(raw: str, expected: str) -> None:
    assert sig.canonical_query(raw) == expected


def test_canonical_path_with_and_without_query() -> None:
    assert sig.canonical_path("/api/v2/x", "") == "/api/v2/x"
    assert sig.canonical_path("/api/v2/x", "s=1&a=b+c") == "/api/v2/x?a=b%20c&s=1"


# --- x-ocp headers -----------------------------------------------------------------------------


def test_ocp_headers_grouped_case_insensitively_sorted_by_name_values_in_order() -> None:
    headers = [
        ("X-OCP-Zeta", "z"),
        ("Content-Type", "application/json"),
        ("x-ocp-alpha", "2"),
        ("X-Ocp-Alpha", "1"),
        ("x-other", "ignored"),
        ("xocp-not", "ignored"),
    ]
    assert sig.canonical_ocp_headers(headers) == "x-ocp-alpha:2,1\nx-ocp-zeta:z"


def test_ocp_headers_none_gives_empty_line() -> None:
    message = sig.string_to_sign("GET", b"", "", "d", "h", [("Accept", "*/*")], "/p", raw_query="")
    assert message == "GET\n\n\nd\nh\n\n/p"


# --- Authorization header ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "OCP-ACCESS-KEY-HMACSHA1 cqammmxBpfGjFlto:XN8P+O+v3vUabB16ZCooq5wMJoY=",
        "  OCP-ACCESS-KEY-HMACSHA1    cqammmxBpfGjFlto:XN8P+O+v3vUabB16ZCooq5wMJoY=  ",
        "OCP-ACCESS-KEY-HMACSHA1 cqammmxBpfGjFlto : XN8P+O+v3vUabB16ZCooq5wMJoY=",
    ],
)
def test_parse_authorization_good(value: str) -> None:
    assert sig.parse_authorization(value) == (AK, "XN8P+O+v3vUabB16ZCooq5wMJoY=")


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Basic YWRtaW46cGFzcw==",
        "OCP-ACCESS-KEY-HMACSHA256 cqammmxBpfGjFlto:XN8P",
        "OCP-ACCESS-KEY-HMACSHA1 cqammmxBpfGjFlto",
        "OCP-ACCESS-KEY-HMACSHA1 :XN8P",
        "OCP-ACCESS-KEY-HMACSHA1 cqammmxBpfGjFlto:",
        "OCP-ACCESS-KEY-HMACSHA1",
        "OCP-ACCESS-KEY-HMACSHA1 a b:c",
    ],
)
def test_parse_authorization_rejects(value: str) -> None:
    assert sig.parse_authorization(value) is None


# --- Date --------------------------------------------------------------------------------------


def test_parse_date_two_and_one_digit_day() -> None:
    assert sig.parse_date("Tue, 17 Jan 2023 09:13:57 GMT") == datetime(
        2023, 1, 17, 9, 13, 57, tzinfo=UTC
    )
    assert sig.parse_date("Sat, 7 Jan 2023 09:13:57 GMT") == datetime(
        2023, 1, 7, 9, 13, 57, tzinfo=UTC
    )


def test_parse_date_result_is_utc_aware() -> None:
    parsed = sig.parse_date("Tue, 17 Jan 2023 17:13:57 +0800")
    assert parsed == datetime(2023, 1, 17, 9, 13, 57, tzinfo=UTC)
    assert parsed is not None and parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "value",
    ["", "garbage", "2023-01-17T09:13:57Z", "Tue, 17 Jan 2023 09:13:57", "Tue, 17 Foo 2023 x GMT"],
)
def test_parse_date_rejects(value: str) -> None:
    assert sig.parse_date(value) is None


def test_is_fresh_window() -> None:
    now = datetime(2023, 1, 17, 9, 0, 0, tzinfo=UTC)
    limit = timedelta(seconds=sig.MAX_SKEW_SECONDS)
    assert sig.is_fresh(now + limit, now)
    assert sig.is_fresh(now - limit, now)
    assert not sig.is_fresh(now + limit + timedelta(seconds=1), now)
    assert not sig.is_fresh(now - limit - timedelta(seconds=1), now)


# --- httpx client auth -------------------------------------------------------------------------


def _server_side_message(request: httpx.Request) -> str:
    """Rebuild the string to sign from wire-level data, the way a server sees it."""
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
    target = request.url.raw_path.decode("ascii")
    path, _, raw_query = target.partition("?")

    def one(name: str) -> str:
        return next((v for k, v in headers if k.lower() == name), "")

    return sig.string_to_sign(
        request.method,
        request.read(),
        one("content-type"),
        one("date"),
        one("host"),
        headers,
        path,
        raw_query,
    )


def _apply(auth: OcpSigner, request: httpx.Request) -> httpx.Request:
    flow = auth.auth_flow(request)
    signed = next(flow)
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(200))
    return signed


def test_signer_reproduces_post_vector() -> None:
    request = httpx.Request(
        "POST",
        f"http://{HOST}/api/v2/compute/idcs",
        content=POST_BODY,
        headers={
            "Content-Type": "application/json",
            "x-ocp-data": "A,1",
            "Date": "Tue, 17 Jan 2023 09:13:57 GMT",
        },
    )
    signed = _apply(OcpSigner(AK, SK), request)
    assert signed.headers["Authorization"] == f"{sig.SCHEME} {AK}:XN8P+O+v3vUabB16ZCooq5wMJoY="


def test_signer_adds_date_and_server_verifies() -> None:
    request = httpx.Request(
        "GET",
        "http://localhost:8080/api/v2/ob/proxies",
        params=[("name", "a b,c"), ("id", "2"), ("id", "1"), ("x", "é")],
        headers={"X-OCP-Trace": "t1", "Content-Type": "application/json"},
    )
    assert "date" not in request.headers
    signed = _apply(OcpSigner(AK, SK), request)
    date = sig.parse_date(signed.headers["Date"])
    assert date is not None and sig.is_fresh(date)
    parsed = sig.parse_authorization(signed.headers["Authorization"])
    assert parsed is not None and parsed[0] == AK
    message = _server_side_message(signed)
    assert "x-ocp-trace:t1" in message.split("\n")
    assert message.endswith("/api/v2/ob/proxies?id=1%2C2&name=a%20b%2Cc&x=%C3%A9")
    assert sig.verify(SK, parsed[1], message)
    assert not sig.verify("wrong-secret", parsed[1], message)


def test_signer_through_client_transport() -> None:
    seen: list[bool] = []

    def handler(request: httpx.Request) -> httpx.Response:
        parsed = sig.parse_authorization(request.headers.get("authorization", ""))
        ok = parsed is not None and sig.verify(SK, parsed[1], _server_side_message(request))
        seen.append(ok)
        return httpx.Response(200 if ok else 401)

    with httpx.Client(transport=httpx.MockTransport(handler), auth=OcpSigner(AK, SK)) as client:
        response = client.post("http://ocp.test/api/v2/ob/proxies", json={"n": 1})
        empty = client.post("http://ocp.test/api/v2/op", headers={"Content-Type": "text/plain"})
    assert response.status_code == 200
    assert empty.status_code == 200
    assert seen == [True, True]
