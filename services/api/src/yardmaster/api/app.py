"""The application factory: the API's composition root inside each gunicorn worker."""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from yardmaster.api import (
    arguments,
    auth,
    contentpolicy,
    dashboard,
    data,
    directory,
    events,
    files,
    health,
    jobs,
    jsonbody,
    metrics,
    openapi,
    problems,
    queue,
    reports,
    signedurls,
)
from yardmaster.api.resources import Resources
from yardmaster.api.serving import BodyDeadline
from yardmaster.shared.settings import Settings, load_settings


def create_app(settings: Settings | None = None, resources: Resources | None = None) -> Flask:
    """Build the API. Connections are made lazily, on the first request that needs them.

    ``settings`` default to the environment; tests pass their own ``resources`` to share
    connections.
    """
    settings = settings or load_settings()
    app = Flask("yardmaster.api")
    app.config["SETTINGS"] = settings
    app.extensions["yardmaster"] = resources or Resources.from_settings(settings)
    problems.register(app)
    contentpolicy.register(app)  # nosniff, CSP, ... on every answer
    arguments.register(app)
    app.json = jsonbody.JSONProvider(app)  # a body nested too deeply is a 400, not a 500
    app.register_blueprint(auth.blueprint)  # first: its check runs before any other
    app.register_blueprint(signedurls.blueprint)
    app.register_blueprint(health.blueprint)
    events.register(app)
    app.register_blueprint(jobs.blueprint)
    app.register_blueprint(data.blueprint)
    app.register_blueprint(reports.blueprint)
    files.register(app)
    app.register_blueprint(directory.blueprint)
    queue.register(app)
    metrics.register(app)
    openapi.register(app)
    app.register_blueprint(dashboard.blueprint)
    app.wsgi_app = BodyDeadline(app.wsgi_app)  # type: ignore[method-assign]  # a stalled body: 408
    if settings.trusted_proxies:  # the client address from X-Forwarded-For, set by them only
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies)  # type: ignore[method-assign]
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_mb * 1024 * 1024
    return app
