"""Where OBProxy packages come from: the directory ``$OCPTASK_PACKAGE_DIR`` names."""

from __future__ import annotations

import os
import re
from pathlib import Path

PACKAGE_NAME = re.compile(
    r"^obproxy-(?P<version>\d+(?:\.\d+)+)-(?P<release>[A-Za-z0-9_.]+)\.(?:x86_64|aarch64|noarch)\.rpm$"
)


def package_dir() -> Path:
    return Path(os.environ.get("OCPTASK_PACKAGE_DIR", "~/.ocptask/packages")).expanduser()


def package_version(file_name: str) -> str:
    """``obproxy-4.3.2.0-1.el7.x86_64.rpm`` -> ``4.3.2.0``."""
    match = PACKAGE_NAME.match(file_name)
    if match is None:
        raise ValueError(f"{file_name!r} is not an obproxy RPM file name")
    return match.group("version")


def package_path(file_name: str) -> Path:
    package_version(file_name)  # also rejects paths: the name must match exactly
    return package_dir() / file_name


def shown_version(file_name: str) -> str:
    """The version a package file name carries, or the name itself when it carries none."""
    try:
        return package_version(file_name)
    except ValueError:
        return file_name
