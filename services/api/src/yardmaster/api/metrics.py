"""``GET /metrics``: Prometheus metrics in the text exposition format (open, like /healthz).

Two sources: the state of the platform, read from the database and Redis at scrape time by
:class:`~yardmaster.api.collector.StateCollector`, and the latency of the HTTP requests this
API served, measured in process. Under gunicorn the latter lives in every worker, so the
server shares it through prometheus-client's multiprocess mode (:mod:`.metrics_dir`,
called by ``python -m yardmaster.api`` before the workers start); an application without it
(the Flask test client) keeps its own registry.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request
from flask.signals import request_finished, request_started
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Histogram,
    generate_latest,
    multiprocess,
)

from yardmaster.api.collector import StateCollector
from yardmaster.api.metrics_dir import multiprocess_enabled
from yardmaster.api.openapi import PROMETHEUS, document
from yardmaster.api.queue import turn_queue
from yardmaster.api.resources import resources
from yardmaster.shared.fileclaims import bucket_id
from yardmaster.shared.settings import Settings

log = logging.getLogger(__name__)
blueprint = Blueprint("metrics", __name__)

#: Endpoint label of requests that matched no route (their paths would be unbounded labels).
UNMATCHED = "unmatched"
_EXTENSION = "yardmaster.metrics"


class RequestMetrics:
    """The latency histogram of one application's requests, fed by Flask's request signals."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram(
            "yardmaster_http_request_duration_seconds",
            "Time to answer HTTP requests (to the first byte of streamed responses)",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )

    def started(self, sender: Flask, **extra: Any) -> None:
        g.metrics_started = time.perf_counter()

    def finished(self, sender: Flask, response: Response, **extra: Any) -> None:
        started = g.pop("metrics_started", None)
        if started is None:
            return
        rule = request.url_rule
        endpoint = rule.rule if rule is not None else UNMATCHED
        self.latency.labels(endpoint, request.method, str(response.status_code)).observe(
            time.perf_counter() - started
        )


def register(app: Flask) -> None:
    """Serve ``/metrics`` and time every request of ``app``."""
    metrics = RequestMetrics()
    app.extensions[_EXTENSION] = metrics
    request_started.connect(metrics.started, app, weak=False)
    request_finished.connect(metrics.finished, app, weak=False)
    app.register_blueprint(blueprint)


@blueprint.get("/metrics")
@document(ok={200: None}, media={200: PROMETHEUS}, tags=["service"])
def scrape() -> Response:
    """Every metric family (see the README's /metrics section); never a 5xx for a dependency
    that is down: its families are left out and ``yardmaster_metrics_source_up`` is 0."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_enabled():
        registry.register(multiprocess.MultiProcessCollector(None))  # type: ignore[no-untyped-call]
    else:
        metrics = current_app.extensions[_EXTENSION]
        assert isinstance(metrics, RequestMetrics)
        registry.register(metrics.registry)
    settings = current_app.config["SETTINGS"]
    assert isinstance(settings, Settings)
    state = StateCollector(
        resources().engine, resources().redis, turn_queue(), bucket_id(settings.bucket)
    )
    registry.register(state)
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
