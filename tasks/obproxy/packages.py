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
    release = _DIST_TAG.sub("", match.group("release")) or match.group("release")
    return f"{match.group('version')}-{release}"


def packages() -> list[str]:
    """The OBProxy packages in the package directory, by file name."""
    folder = package_dir()
    found = folder.iterdir() if folder.is_dir() else iter(())
    return sorted(p.name for p in found if p.is_file() and PACKAGE_NAME.match(p.name))


def by_short_name(short: str) -> list[str]:
    """The packages OCP 4.2's ``shortRpmName`` names: the file name without its distribution
    tag, architecture and ``.rpm`` (``obproxy-1.9.1.1-1919579``), or the full name."""
    return [
        name
        for name in packages()
        if name == short or name.removesuffix(".rpm").rsplit(".", 2)[0] == short
    ]


def newest() -> str | None:
    """The package of the highest version (OCP 4.0's upgrade names none: it goes to the newest
    one it has)."""

    def key(name: str) -> tuple[int, ...]:
        return tuple(int(part) for part in package_version(name).split("."))

    found = packages()
    return max(found, key=key) if found else None
