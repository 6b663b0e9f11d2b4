"""``python -m cli``: the ``ocptask`` command."""

from __future__ import annotations

from .app import app

app()
