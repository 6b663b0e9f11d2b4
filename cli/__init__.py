"""``ocptask``: the operator's command line, beside the HTTP API and a thin layer over the same
calls. ``cli:app`` is the console script; ``python -m cli`` runs it too.

Modules load when a command needs them: ``--help`` and a read through a server never import
SQLAlchemy, paramiko or the scheduler.
"""

from __future__ import annotations

from .app import app

__all__ = ["app"]
