"""``GET /metrics``: Prometheus metrics in the text exposition format (open, like /healthz).

Two sources: the state of the platform, read from the database and Redis at scrape time by
:class:`~yardmaster.api.collector.StateCollector`, and the latency of the HTTP requests this
API served, measured in process. Under gunicorn the latter lives in every worker, so the
server shares it through prometheus-client's multiprocess mode (:func:`use_multiprocess_dir`,
called by ``python -m yardmaster.api`` before the workers start); an application without it
(the Flask test client) keeps its own registry.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request
from flask.signals import request_finished, request_started
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

from yardmaster.api.collector import StateCollector
from yardmaster.api.openapi import PROMETHEUS, document
from yardmaster.api.queue import turn_queue
from yardmaster.api.resources import resources
from yardmaster.shared.fileclaims import bucket_id
from yardmaster.shared.settings import Settings

log = logging.getLogger(__name__)
blueprint = Blueprint("metrics", __name__)

#: prometheus-client's own variable: the folder its multiprocess mode shares values through.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Endpoint label of requests that matched no route (their paths would be unbounded labels).
UNMATCHED = "unmatched"
_EXTENSION = "yardmaster.metrics"


def use_multiprocess_dir(directory: Path) -> None:
    """Make every process started from now on share its in-process metrics through ``directory``.

    Called once by the server's main process before gunicorn forks its workers: empties the
    folder (an earlier run's files would add to this run's counts) and exports
    ``PROMETHEUS_MULTIPROC_DIR`` to the workers. prometheus-client picks its value storage when
    it is imported, which importing this package has already done, so the pick is made again
    (the library looks it up at each metric's creation; its own tests swap it the same way).
    """
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(directory)
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    log.info("request metrics of the workers shared through %s", directory)


def mark_worker_dead(pid: int) -> None:
    """Tell the multiprocess mode a worker is gone (gunicorn's ``child_exit`` hook)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def multiprocess_enabled() -> bool:
    """True when this process writes its metrics to the shared folder."""
    return bool(os.environ.get(MULTIPROC_ENV))


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
