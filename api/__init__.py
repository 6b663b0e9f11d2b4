"""OCP's HTTP API over ocptask's engine (``ocptask serve``)."""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
