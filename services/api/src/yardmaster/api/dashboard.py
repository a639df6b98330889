"""``GET /``: the dashboard page to browsers, the JSON index to API clients.

The page is plain HTML shipped in the package (``pages/dashboard.html``); its scripts and
styles are the app's static files (``static/``, served by Flask at ``/static/``), so nothing
is fetched from another host.
"""

from __future__ import annotations

import json
from functools import cache

from flask import Blueprint, Response, jsonify, request

from yardmaster.api import schemas
from yardmaster.api.contentpolicy import html_answer, packaged_page, page_policy
from yardmaster.api.openapi import HTML, document
from yardmaster.shared.imports import ImportMode, ImportTable
from yardmaster.shared.jobs import TERMINAL_STATES, Action, JobKind, JobState
from yardmaster.shared.scheduling import CLASS_LIMITS, MAX_EXECUTION_SECONDS

blueprint = Blueprint("dashboard", __name__)

#: Where an API client goes next from ``/``.
LINKS = {
    "dashboard": "/",
    "health": "/healthz",
    "readiness": "/readyz",
    "processes": "/status",
    "whoami": "/whoami",
    "jobs": "/jobs",
    "job_events": "/jobs/events",
    "trigger_report": "/trigger_report",
    "imports": "/imports",
    "exports": "/exports",
    "files": "/files",
    "workers": "/workers",
    "sites": "/sites",
    "customers": "/customers",
    "queue": "/queue",
    "openapi": "/openapi.json",
    "docs": "/docs",
    "metrics": "/metrics",
}


@cache
def page() -> tuple[str, str]:
    """The dashboard HTML with the job contract (states, kinds, tables, the job classes'
    bounds) written into it, so the page's scripts never keep their own copy; and its
    Content-Security-Policy (the contract is data, never run: no script runs inline)."""
    contract = {
        "states": [s.value for s in JobState],
        "terminal_states": sorted(s.value for s in TERMINAL_STATES),
        "kinds": [k.value for k in JobKind],
        "actions": [a.value for a in Action],
        "import_tables": [t.value for t in ImportTable],
        "import_modes": [m.value for m in ImportMode],
        "scheduling": {
            "class_limits": list(CLASS_LIMITS),
            "max_execution_time": MAX_EXECUTION_SECONDS,
        },
    }
    html, _ = packaged_page("dashboard.html")
    html = html.replace("{{ contract }}", json.dumps(contract).replace("<", "\\u003c"))
    return html, page_policy(html)


def wants_html() -> bool:
    """True when the caller prefers HTML to JSON (a browser); ``*/*`` or no Accept means JSON."""
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html"


@blueprint.get("/")
@document(ok={200: schemas.Index}, media={200: HTML}, tags=["service"])
def index() -> Response:
    """The dashboard (to browsers) or what this service is and where to go next (JSON)."""
    if wants_html():
        response = html_answer(*page())
    else:
        response = jsonify(service="yardmaster-api", links=LINKS)
    response.vary.add("Accept")
    return response
