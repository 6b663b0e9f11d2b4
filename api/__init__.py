"""OCP's HTTP API over ocptask's engine and task packages (``ocptask serve``), its web console,
and identity (``auth``: users, sessions, signatures).

``create_app`` is imported when first used: a client of the API (the CLI's ``--server``) needs
the signature (``auth.signature``), not FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
