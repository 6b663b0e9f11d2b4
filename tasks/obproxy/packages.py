"""Where OBProxy packages come from: the directory ``$OCPTASK_PACKAGE_DIR`` names.

A package is named as OceanBase names its RPMs: ``obproxy-4.3.2.0-1.el7.x86_64.rpm`` (or
``obproxy-ce-…`` for the community edition): version, release (with the distribution's tag),
architecture. The version alone names the install directory (``~/obproxy-4.3.2.0``); OCP shows
an OBProxy's version as version-release without the distribution tag (its sample package
``obproxy-1.9.1.1-1919579.el7.x86_64.rpm`` is shown as ``1.9.1.1-1919579``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from engine import FieldError, RequestInvalid

if TYPE_CHECKING:
    from .bodies import UpgradeRequest

PACKAGE_NAME = re.compile(
    r"^obproxy(?:-ce)?-(?P<version>\d+(?:\.\d+)+)-(?P<release>[A-Za-z0-9_.]+)"
    r"\.(?P<arch>x86_64|aarch64|noarch)\.rpm$"
)
# The distribution tag closing a release: ``.el7``, ``.el8``, ``.al8``, ``.alios7``, ``.an8``.
_DIST_TAG = re.compile(r"\.[A-Za-z]+\d+[A-Za-z0-9_]*$")


def package_dir() -> Path:
    return Path(os.environ.get("OCPTASK_PACKAGE_DIR", "~/.ocptask/packages")).expanduser()


def _parts(file_name: str) -> re.Match[str]:
    match = PACKAGE_NAME.match(file_name)
    if match is None:
        raise ValueError(f"{file_name!r} is not an obproxy RPM file name")
    return match


def package_version(file_name: str) -> str:
    """``obproxy-4.3.2.0-1.el7.x86_64.rpm`` -> ``4.3.2.0``."""
    return _parts(file_name).group("version")


def package_path(file_name: str) -> Path:
    package_version(file_name)  # also rejects paths: the name must match exactly
    return package_dir() / file_name


def shown_version(file_name: str) -> str:
    """What OCP shows as an OBProxy's version: ``obproxy-4.3.2.0-1.el7.x86_64.rpm`` ->
    ``4.3.2.0-1``; the name itself when it is no package name."""
    try:
        match = _parts(file_name)
    except ValueError:
        return file_name
    return f"{match.group('version')}-{shown_release(match.group('release'))}"


def shown_release(release: str) -> str:
    """A release as OCP shows it, without its distribution tag: ``1.el7`` -> ``1``."""
    return _DIST_TAG.sub("", release) or release


def running_version(recorded: str) -> str:
    """The version an OBProxy's recorded ``version`` names: its package's (``obproxy-4.3.2.0-1
    .el7.x86_64.rpm`` -> ``4.3.2.0``), or for one taken over, which records what its binary
    said as OCP shows it (``4.3.2.0-1``), the part before the release."""
    try:
        return package_version(recorded)
    except ValueError:
        return recorded.split("-", 1)[0]


def packages() -> list[str]:
    """The OBProxy packages in the package directory, by file name."""
    folder = package_dir()
    found = folder.iterdir() if folder.is_dir() else iter(())
    return sorted(p.name for p in found if p.is_file() and PACKAGE_NAME.match(p.name))


def short_name(file_name: str) -> str:
    """OCP 4.2's ``shortRpmName`` of a package: its name without distribution tag, architecture
    and ``.rpm`` (``obproxy-1.9.1.1-1919579.el7.x86_64.rpm`` -> ``obproxy-1.9.1.1-1919579``)."""
    match = _parts(file_name)
    prefix = file_name[: match.start("version")]
    return f"{prefix}{match.group('version')}-{shown_version(file_name).split('-', 1)[1]}"


def _fits(file_name: str, arch: str | None) -> bool:
    return arch is None or _parts(file_name).group("arch") in (arch, "noarch")


def by_short_name(short: str, arch: str | None = None) -> list[str]:
    """The packages ``shortRpmName`` names (or the full file name), for ``arch`` if known."""
    return [n for n in packages() if (n == short or short_name(n) == short) and _fits(n, arch)]


def edition(file_name: str) -> str:
    """``obproxy`` or ``obproxy-ce``: the product a package is, which an upgrade keeps."""
    return file_name[: _parts(file_name).start("version") - 1]


def newest(arch: str | None = None, product: str | None = None) -> str | None:
    """The package of the highest version and release for ``arch`` and of ``product`` (an
    ``edition``) when they are known (OCP 4.0's upgrade names none: it goes to the newest)."""

    def key(name: str) -> tuple[tuple[int, ...], tuple[tuple[int, int | str], ...]]:
        match = _parts(name)
        release = re.split(r"[._]", _DIST_TAG.sub("", match.group("release")))
        parts = tuple((0, int(p)) if p.isdigit() else (1, p) for p in release)
        return tuple(int(p) for p in match.group("version").split(".")), parts

    found = [n for n in packages() if _fits(n, arch) and (product is None or edition(n) == product)]
    return max(found, key=key) if found else None


def upgrade_package(request: UpgradeRequest, arch: str | None, product: str | None) -> str:
    """The package file an upgrade goes to: ``version`` (ours, a file name), else the one
    ``shortRpmName`` names, else the newest of the running ``product`` for the hosts'
    architecture ``arch`` (each when known); a field error when they disagree or name none."""
    if request.shortRpmName is not None:
        named = by_short_name(request.shortRpmName, arch)
        if len(named) != 1:
            known = ", ".join(short_name(p) for p in packages()) or "none"
            why = (
                f"names no package (there are: {known})"
                if not named
                else (f"names several: {', '.join(named)}")
            )
            raise RequestInvalid([FieldError("shortRpmName", why, request.shortRpmName)])
        if request.version is not None and request.version != named[0]:
            message = f"names {named[0]}, but version says {request.version}"
            raise RequestInvalid([FieldError("shortRpmName", message, request.shortRpmName)])
        return named[0]
    if request.version is not None:
        return request.version
    latest = newest(arch, product)
    if latest is None:
        raise RequestInvalid([FieldError("shortRpmName", "no OBProxy package to upgrade to")])
    return latest
