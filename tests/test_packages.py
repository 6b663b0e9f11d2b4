"""Choosing an OBProxy package by OCP's names: the short name (OCP 4.2's ``shortRpmName``), and
the newest one for an upgrade without a body (OCP 4.0), by version and release, for the hosts'
architecture and the product that runs (``obproxy`` or the community ``obproxy-ce``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import RequestInvalid
from tasks.obproxy.bodies import UpgradeRequest
from tasks.obproxy.packages import by_short_name, edition, newest, short_name, upgrade_package

NAMES = [
    "obproxy-4.3.2.0-1.el7.x86_64.rpm",
    "obproxy-4.3.3.0-1.el7.x86_64.rpm",
    "obproxy-4.3.3.0-1.el7.aarch64.rpm",
    "obproxy-4.3.3.0-1.alpha.el7.x86_64.rpm",
    "obproxy-ce-4.3.3.0-3.el7.x86_64.rpm",
    "obproxy-4.3.1.0-2.x86_64.rpm",
]


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in NAMES:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a package")
    monkeypatch.setenv("OCPTASK_PACKAGE_DIR", str(tmp_path))
    return tmp_path


def test_short_names_as_ocp_writes_them(folder: Path) -> None:
    assert short_name("obproxy-1.9.1.1-1919579.el7.x86_64.rpm") == "obproxy-1.9.1.1-1919579"
    assert short_name("obproxy-ce-4.3.3.0-3.el7.x86_64.rpm") == "obproxy-ce-4.3.3.0-3"
    assert by_short_name("obproxy-4.3.1.0-2") == ["obproxy-4.3.1.0-2.x86_64.rpm"]  # no dist tag
    assert len(by_short_name("obproxy-4.3.3.0-1")) == 2  # two architectures
    assert by_short_name("obproxy-4.3.3.0-1", "aarch64") == ["obproxy-4.3.3.0-1.el7.aarch64.rpm"]
    assert edition("obproxy-ce-4.3.3.0-3.el7.x86_64.rpm") == "obproxy-ce"


def test_the_newest_keeps_architecture_and_product(folder: Path) -> None:
    assert newest("aarch64") == "obproxy-4.3.3.0-1.el7.aarch64.rpm"
    assert newest("x86_64", "obproxy") == "obproxy-4.3.3.0-1.alpha.el7.x86_64.rpm"
    assert newest("x86_64", "obproxy-ce") == "obproxy-ce-4.3.3.0-3.el7.x86_64.rpm"
    assert newest("ppc64le") is None


def test_upgrade_bodies_resolve_or_say_what_exists(folder: Path) -> None:
    short = UpgradeRequest(shortRpmName="obproxy-4.3.3.0-1")
    assert upgrade_package(short, "x86_64", None) == "obproxy-4.3.3.0-1.el7.x86_64.rpm"
    with pytest.raises(RequestInvalid) as err:
        upgrade_package(short, None, None)  # two architectures, none known
    assert err.value.fields == ["shortRpmName"] and "several" in str(err.value)
    with pytest.raises(RequestInvalid) as err:
        upgrade_package(UpgradeRequest(shortRpmName="obproxy-9.9"), "x86_64", None)
    assert "obproxy-ce-4.3.3.0-3" in str(err.value)  # the packages there are
    clash = UpgradeRequest(shortRpmName="obproxy-4.3.2.0-1", version=NAMES[1])
    with pytest.raises(RequestInvalid, match="but version says"):
        upgrade_package(clash, "x86_64", None)
    assert upgrade_package(UpgradeRequest(), "x86_64", "obproxy-ce") == NAMES[4]
