"""Integration fixtures: the API on a real Redis and the test database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine

from yardmaster.api import create_app
from yardmaster.api.live.registry import EXTENSION
from yardmaster.api.resources import Resources
from yardmaster.shared.migrate import head_revision, upgrade_to_head
from yardmaster.shared.redis_client import make_redis
from yardmaster.shared.settings import load_settings


@pytest.fixture
def client(
    redis_url: str, database_url: str, engine: Engine, tmp_path: Path
) -> Iterator[FlaskClient]:
    """A test client of the API on the migrated test database (modules may define their own);
    its live views' relay, if a test opened a stream, ends with the test."""
    upgrade_to_head(engine)
    settings = load_settings(
        {}, redis_url=redis_url, database_url=database_url, data_dir=str(tmp_path)
    )
    app = create_app(settings, Resources(make_redis(redis_url, 1.0), engine, head_revision()))
    yield app.test_client()
    if (hub := app.extensions.get(EXTENSION)) is not None:
        hub.close()
