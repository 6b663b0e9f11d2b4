"""Request hardening: length limits, unsafe characters, 64-bit ids and case-variant field names
are refused with the field named; the seed (with its undocumented ``clusterId``) still passes."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine import Engine, FieldError, RequestInvalid
from fixtures import sample_request
from tasks.obproxy import create_cluster
from tasks.obproxy.request import CreateObproxyClusterRequest
from tasks.validation import parse

Edit = Callable[[dict[str, Any]], None]
MAX_ID = 2**63 - 1


def _errors(body: dict[str, Any]) -> list[FieldError]:
    """Every FieldError for ``body``: pydantic's and the case check first, then problems()."""
    try:
        parsed = parse(CreateObproxyClusterRequest, body)
    except RequestInvalid as exc:
        return exc.errors
    return parsed.problems()


def _link(**changes: Any) -> Edit:
    return lambda r: r["obLinks"][0].update(changes)


HOSTED = {"sqlPort": 2883, "exportPort": 2884, "version": "obproxy-4.3.2.0-1.el7.x86_64.rpm"}


def _install(**changes: Any) -> Edit:
    if changes.get("hostIds"):
        changes = HOSTED | changes  # hosts make the ports and version required
    return lambda r: r["obproxyInstallParam"].update(changes)


def _param(field: str, name: str = "a", value: str = "1") -> Edit:
    return lambda r: r.update({field: [{"name": name, "value": value}]})


def _params(field: str, count: int) -> Edit:
    return lambda r: r.update({field: [{"name": f"p{i}", "value": "1"} for i in range(count)]})


def _links(count: int) -> Edit:
    return lambda r: r.update(
        obLinks=[
            {"clusterName": f"c{i}", "obClusterId": i + 1, "username": "proxyro"}
            for i in range(count)
        ]
    )


# (case, edit that is accepted at the limit, edit one past it, field)
LIMITS: list[tuple[str, Edit, Edit, str]] = [
    ("name", lambda r: r.update(name="n" * 64), lambda r: r.update(name="n" * 65), "name"),
    (
        "clusterName",
        _link(clusterName="c" * 64),
        _link(clusterName="c" * 65),
        "obLinks[0].clusterName",
    ),
    ("username", _link(username="u" * 64), _link(username="u" * 65), "obLinks[0].username"),
    (
        "address",
        lambda r: r.update(address="a" * 255),
        lambda r: r.update(address="a" * 256),
        "address",
    ),
    (
        "parameter name",
        _param("parameters", name="p" * 128),
        _param("parameters", name="p" * 129),
        "parameters[0].name",
    ),
    (
        "startup value",
        _param("startupParameters", value="v" * 4096),
        _param("startupParameters", value="v" * 4097),
        "startupParameters[0].value",
    ),
    (
        "1 MB startup value",
        _param("startupParameters", value="v" * 4096),
        _param("startupParameters", value="v" * 2**20),
        "startupParameters[0].value",
    ),
    (
        "parameter value",
        _param("parameters", value="v" * 4096),
        _param("parameters", value="v" * 4097),
        "parameters[0].value",
    ),
    (
        "version",
        _install(version="v" * 255),
        _install(version="v" * 256),
        "obproxyInstallParam.version",
    ),
    (
        "rsList",
        _link(rsList="1" * 4096),
        _link(rsList="1" * 4097),
        "obLinks[0].rsList",
    ),
    ("obLinks", _links(64), _links(65), "obLinks"),
    (
        "hostIds",
        _install(hostIds=list(range(1, 1001))),
        _install(hostIds=list(range(1, 1002))),
        "obproxyInstallParam.hostIds",
    ),
    (
        "startupParameters",
        _params("startupParameters", 1000),
        _params("startupParameters", 1001),
        "startupParameters",
    ),
    ("parameters", _params("parameters", 1000), _params("parameters", 1001), "parameters"),
    (
        "obClusterId",
        _link(obClusterId=MAX_ID),
        _link(obClusterId=MAX_ID + 1),
        "obLinks[0].obClusterId",
    ),
    (
        "hostIds[i]",
        _install(hostIds=[MAX_ID]),
        _install(hostIds=[1, MAX_ID + 1]),
        "obproxyInstallParam.hostIds[1]",
    ),
    (
        "2**64 obClusterId",
        _link(obClusterId=1),
        _link(obClusterId=2**64),
        "obLinks[0].obClusterId",
    ),
]


@pytest.mark.parametrize(("case", "ok", "bad", "field"), LIMITS, ids=[c[0] for c in LIMITS])
def test_limits(case: str, ok: Edit, bad: Edit, field: str) -> None:
    at_limit = sample_request()
    ok(at_limit)
    assert _errors(at_limit) == [], case
    past = sample_request()
    bad(past)
    errors = _errors(past)
    assert field in [e.field for e in errors], (case, errors)


def _name_edits(text: str) -> list[tuple[str, Edit, str]]:
    return [
        ("name", lambda r: r.update(name=text), "name"),
        ("clusterName", _link(clusterName=text), "obLinks[0].clusterName"),
        ("username", _link(username=text), "obLinks[0].username"),
        ("address", lambda r: r.update(address=text), "address"),
        ("version", _install(version=text), "obproxyInstallParam.version"),
        ("parameter name", _param("parameters", name=text), "parameters[0].name"),
        ("startup name", _param("startupParameters", name=text), "startupParameters[0].name"),
    ]


# (what, text, words the message must contain)
UNSAFE_NAMES: list[tuple[str, str, str]] = [
    ("ESC", "ab\x1b[31m", "control characters (U+001B at position 2)"),
    ("NUL", "a\x00", "control characters (U+0000 at position 1)"),
    ("newline", "a\nb", "control characters (U+000A at position 1)"),
    ("trailing newline", "ab\n", "control characters (U+000A at position 2)"),
    ("tab", "a\tb", "control characters (U+0009 at position 1)"),
    ("DEL", "a\x7f", "control characters (U+007F"),
    ("C1 control", "a\x85", "control characters (U+0085"),
    ("zero-width space", "a\u200bb", "format characters (U+200B at position 1)"),
    ("zero-width only", "\u200b\u200b", "format characters (U+200B at position 0)"),
    ("BOM", "\ufeffname", "format characters (U+FEFF at position 0)"),
    ("bidi override", "abc\u202edef", "format characters (U+202E at position 3)"),
    ("lone surrogate", "a\ud800", "surrogate"),
    ("private use", "a\ue000", "private-use"),
    ("unassigned", "a\U000e0080", "unassigned"),
    ("line separator", "a\u2028b", "line separators (U+2028"),
    ("paragraph separator", "a\u2029b", "paragraph separators (U+2029"),
    ("only spaces", "   ", "empty or only whitespace"),
    ("only ideographic spaces", "\u3000\u3000", "empty or only whitespace"),
    ("only hangul filler", "\u3164", "visible character"),
    ("only braille blank", "\u2800\u2800", "visible character"),
    ("only combining mark", "\u0301", "visible character"),
]

UNSAFE_CASES = [
    (f"{what} in {field_case}", text, words, edit, field)
    for what, text, words in UNSAFE_NAMES
    for field_case, edit, field in _name_edits(text)
]


@pytest.mark.parametrize(
    ("case", "text", "words", "edit", "field"), UNSAFE_CASES, ids=[c[0] for c in UNSAFE_CASES]
)
def test_unsafe_names_are_refused(case: str, text: str, words: str, edit: Edit, field: str) -> None:
    body = sample_request()
    edit(body)
    with pytest.raises(RequestInvalid) as err:
        parse(CreateObproxyClusterRequest, body)
    messages = [e.message for e in err.value.errors if e.field == field]
    assert messages, (case, err.value.errors)
    assert any(words in m for m in messages), (case, messages)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  OBProxy 002  ", "OBProxy 002"),  # surrounding spaces are stripped, as before
        ("集群-é_1", "集群-é_1"),
        ("a\u00a0b", "a\u00a0b"),
    ],
)
def test_printable_names_are_accepted(text: str, expected: str) -> None:
    body = sample_request() | {"name": text}
    assert parse(CreateObproxyClusterRequest, body).name == expected


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("a\x1bb", "control characters (U+001B at position 1)"),
        ("line\nbreak", "control characters (U+000A at position 4)"),
        ("a\tb", "control characters (U+0009 at position 1)"),
        ("a\u2028", "line separators"),
        ("a\u2029", "paragraph separators"),
        ("\u200b", "invisible format characters (U+200B at position 0)"),  # zero width
        ("abc\u202e", "invisible format characters (U+202E at position 3)"),  # reads backwards
    ],
)
@pytest.mark.parametrize("field", ["startupParameters", "parameters"])
def test_unsafe_values_are_refused(field: str, value: str, words: str) -> None:
    body = sample_request() | {field: [{"name": "a", "value": value}]}
    with pytest.raises(RequestInvalid) as err:
        parse(CreateObproxyClusterRequest, body)
    assert [e.field for e in err.value.errors] == [f"{field}[0].value"]
    assert words in err.value.errors[0].message


@pytest.mark.parametrize("value", ["with spaces", "", "   ", "10s", "é 集群"])
def test_values_may_hold_spaces_and_printable_text(value: str) -> None:
    body = sample_request() | {"parameters": [{"name": "a", "value": value}]}
    assert parse(CreateObproxyClusterRequest, body).parameters[0].value == value


# (case, edit, offending path, real field name)
CASE_VARIANTS: list[tuple[str, Edit, str, str]] = [
    ("workmode", lambda r: r.update(workmode="RS_LIST"), "workmode", "workMode"),
    ("WORKMODE", lambda r: r.update(WORKMODE="RS_LIST"), "WORKMODE", "workMode"),
    (
        "startupparameters",
        lambda r: r.update(startupparameters=[{"name": "a", "value": "1"}]),
        "startupparameters",
        "startupParameters",
    ),
    ("Name beside name", lambda r: r.update(Name="x"), "Name", "name"),
    (
        "obproxyinstallparam",
        lambda r: r.update(obproxyinstallparam={}),
        "obproxyinstallparam",
        "obproxyInstallParam",
    ),
    ("obclusterid", _link(obclusterid=2), "obLinks[0].obclusterid", "obClusterId"),
    ("UserName", _link(UserName="root"), "obLinks[0].UserName", "username"),
    ("rslist", _link(rslist="1.1.1.1:2881"), "obLinks[0].rslist", "rsList"),
    ("hostids", _install(hostids=[1]), "obproxyInstallParam.hostids", "hostIds"),
    (
        "parameter Value",
        lambda r: r.update(parameters=[{"name": "a", "value": "1", "Value": "2"}]),
        "parameters[0].Value",
        "value",
    ),
    (
        "second link",
        lambda r: r["obLinks"].append(
            {"clusterName": "c2", "obClusterId": 2, "username": "u", "clustername": "x"}
        ),
        "obLinks[1].clustername",
        "clusterName",
    ),
]


@pytest.mark.parametrize(
    ("case", "edit", "path", "real"), CASE_VARIANTS, ids=[c[0] for c in CASE_VARIANTS]
)
def test_case_variants_are_refused(case: str, edit: Edit, path: str, real: str) -> None:
    body = sample_request()
    edit(body)
    with pytest.raises(RequestInvalid) as err:
        parse(CreateObproxyClusterRequest, body)
    found = [e for e in err.value.errors if e.field == path]
    assert len(found) == 1, (case, err.value.errors)
    assert f"did you mean {real}?" in found[0].message


def test_case_variants_are_reported_with_pydantic_errors() -> None:
    body = sample_request() | {"workmode": "RS_LIST", "port": "x2883"}
    del body["name"]
    with pytest.raises(RequestInvalid) as err:
        parse(CreateObproxyClusterRequest, body)
    assert set(err.value.fields) == {"workmode", "port", "name"}


def test_values_are_read_as_jackson_reads_them() -> None:
    """OCP's Jackson coerces numeric strings to numbers and numbers to strings; it never takes a
    boolean or a fraction for a whole number."""
    body = sample_request() | {"port": "2883", "name": 42}
    body["obLinks"][0]["obClusterId"] = "1"
    parsed = parse(CreateObproxyClusterRequest, body)
    assert (parsed.port, parsed.name, parsed.obLinks[0].obClusterId) == (2883, "42", 1)
    for bad in (True, 2883.5, "2883.5", "", None if False else "0x0b43"):
        with pytest.raises(RequestInvalid) as err:
            parse(CreateObproxyClusterRequest, sample_request() | {"port": bad})
        assert err.value.fields == ["port"], bad


def test_other_unknown_fields_are_ignored() -> None:
    body = sample_request() | {"comment": "x", "workModes": "y"}
    body["obLinks"][0]["clusterID"] = 7  # a case variant of nothing known: clusterId is not one
    assert "clusterId" in sample_request()["obLinks"][0]
    parsed = parse(CreateObproxyClusterRequest, body)
    assert parsed.problems() == []
    assert "clusterId" not in parsed.obLinks[0].model_dump()


def _row_counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            )
            if r[0] != "audit_event"  # a refusal is recorded as an event, by design
        ]
        return {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}


ENGINE_CASES: list[tuple[str, Edit, str]] = [
    (
        "1 MB startup value",
        _param("startupParameters", value="x" * 2**20),
        "startupParameters[0].value",
    ),
    ("ESC in name", lambda r: r.update(name="a\x1b[2J"), "name"),
    ("zero-width-only username", _link(username="\u200b"), "obLinks[0].username"),
    ("2**63 obClusterId", _link(obClusterId=2**63), "obLinks[0].obClusterId"),
    ("workmode", lambda r: r.update(workmode="RS_LIST"), "workmode"),
    ("nested obclusterid", _link(obclusterid=5), "obLinks[0].obclusterid"),
]


@pytest.mark.parametrize(("case", "edit", "field"), ENGINE_CASES, ids=[c[0] for c in ENGINE_CASES])
def test_create_cluster_refuses_and_writes_nothing(
    engine: Engine, db_path: Path, case: str, edit: Edit, field: str
) -> None:
    create_cluster(engine, sample_request() | {"name": "existing"})  # tables exist, one row each
    before = _row_counts(db_path)
    body = sample_request()
    edit(body)
    with pytest.raises(RequestInvalid) as err:
        create_cluster(engine, body)
    assert field in err.value.fields, (case, err.value.fields)
    assert _row_counts(db_path) == before


def test_seed_sample_still_accepted(engine: Engine) -> None:
    body = sample_request()
    assert "clusterId" in body["obLinks"][0]
    assert parse(CreateObproxyClusterRequest, body).problems() == []
    create_cluster(engine, body)


def test_password_parameters_are_taken_and_never_echoed(engine: Engine) -> None:
    """A password-like parameter is taken (it never goes in -o, so ',' and '=' are fine); one
    refused is named by its field, its value masked in the error."""
    secret = {"name": "obproxy_sys_password", "value": "S3cret,with=signs"}
    assert _errors(sample_request() | {"startupParameters": [secret]}) == []
    assert _errors(sample_request() | {"parameters": [{**secret, "name": "OBSERVER_Passwd"}]}) == []
    bad = {"name": "observer_sys_password", "value": "S3cret-xyz\x07"}
    with pytest.raises(RequestInvalid) as err:
        create_cluster(engine, sample_request() | {"parameters": [bad]})
    (error,) = err.value.errors
    assert error.field == "parameters[0].value" and error.rejected_value == "******"
    assert "S3cret-xyz" not in repr(err.value.errors) + str(err.value)
