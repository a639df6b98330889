"""Yardmaster's HTTP API: ``create_app()`` builds the Flask application.

``create_app`` is imported on first use, so that ``python -m yardmaster.api`` can set up the
metrics folder before the application's modules (and prometheus-client) are imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from yardmaster.api.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from yardmaster.api.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
