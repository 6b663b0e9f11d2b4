"""Peers (Prefect, Ansible) each live in a venv of their own under the bench cache
(``$OCPTASK_BENCH_CACHE``, default ``~/.cache/ocptask-bench``), made when missing and never
inside the project's venv, so that their pins never touch ours."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CACHE = Path(os.environ.get("OCPTASK_BENCH_CACHE", "~/.cache/ocptask-bench")).expanduser()


class PeerMissing(RuntimeError):
    """The peer could not be installed; the message says what pip answered."""


def peer_python(name: str, requirements: list[str], probe: str) -> Path:
    """The python of peer ``name``'s venv, installed when ``probe`` (Python code) fails there."""
    venv = CACHE / name
    python = venv / "bin" / "python"
    if (
        python.exists()
        and not subprocess.run([python, "-c", probe], capture_output=True).returncode
    ):
        return python
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", venv], check=True)
    made = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements],
        capture_output=True,
        text=True,
    )
    if made.returncode or subprocess.run([python, "-c", probe], capture_output=True).returncode:
        raise PeerMissing(f"{name} could not be installed: {made.stderr.strip()[-300:]}")
    return python


def version(python: Path, module: str) -> str:
    """The installed version of a peer's distribution, as its venv's pip metadata says."""
    code = f"import importlib.metadata as m; print(m.version({module!r}))"
    ran = subprocess.run([python, "-c", code], capture_output=True, text=True)
    return ran.stdout.strip() or "?"
