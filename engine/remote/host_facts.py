"""What a host tells about itself over SSH: OCP's ``architecture``, ``operatingSystem`` and
``operatingSystemRelease``, read by one command.

The values follow OCP's own samples (the host module's list and detail pages): ``architecture``
is ``uname -m`` (``x86_64``); ``operatingSystem`` is the kernel release, ``uname -r``
(``4.9.168-018.ali3000.alios7.x86_64``), not a distribution name; ``operatingSystemRelease`` is
the distribution's id and major version from os-release(5) (``alios7``; ``centos7``,
``debian12``). What the host cannot say stays None: a missing os-release leaves the release
unknown, never fails the step that asked.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

_MARK = "ocptask-facts"
FACTS_COMMAND = (
    f"printf '{_MARK}.arch=%s\\n' \"$(uname -m 2>/dev/null)\"; "
    f"printf '{_MARK}.kernel=%s\\n' \"$(uname -r 2>/dev/null)\"; "
    "for f in /etc/os-release /usr/lib/os-release; do "
    f'if [ -r "$f" ]; then echo {_MARK}.os-release; cat "$f"; break; fi; done; true'
)
"""One POSIX sh line that always exits 0; whatever a login script prints before it is passed
over (each fact is found by its mark)."""

MAX_LENGTH = 128
_WORD = re.compile(r"[^A-Za-z0-9._+-]")


@dataclass(frozen=True)
class HostFacts:
    architecture: str | None = None
    operating_system: str | None = None
    operating_system_release: str | None = None

    @classmethod
    def parse(cls, stdout: str) -> HostFacts:
        """The facts in ``FACTS_COMMAND``'s output; any line it does not expect is passed over."""
        found: dict[str, str] = {}
        os_release: dict[str, str] = {}
        in_os_release = False
        for line in stdout.splitlines():
            if in_os_release:
                key, sep, value = line.partition("=")
                if sep and key.strip().isidentifier():
                    os_release[key.strip()] = _unquoted(value)
            elif line == f"{_MARK}.os-release":
                in_os_release = True
            elif line.startswith(f"{_MARK}.") and "=" in line:
                key, _, value = line[len(_MARK) + 1 :].partition("=")
                found[key] = value
        return cls(
            architecture=_clean(found.get("arch")),
            operating_system=_clean(found.get("kernel")),
            operating_system_release=_release(os_release),
        )


def _unquoted(value: str) -> str:
    """An os-release value: shell-quoted as the format allows, or plain."""
    try:
        return " ".join(shlex.split(value, comments=False))
    except ValueError:  # an unbalanced quote: take the text as it is
        return value.strip().strip("\"'")


def _clean(value: str | None) -> str | None:
    value = _WORD.sub("", value or "")[:MAX_LENGTH]
    return value or None


def _release(os_release: dict[str, str]) -> str | None:
    """``ID`` with the major of ``VERSION_ID`` (``debian`` + ``12`` -> ``debian12``); just the id
    for a rolling distribution without a version."""
    distribution = _clean(os_release.get("ID"))
    if distribution is None:
        return None
    major = _clean((os_release.get("VERSION_ID") or "").split(".")[0])
    return f"{distribution}{major or ''}"[:MAX_LENGTH]
