"""Yardmaster's HTTP API: ``create_app()`` builds the Flask application."""

from yardmaster.api.app import create_app

__all__ = ["create_app"]
