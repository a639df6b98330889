"""``python -m yardmaster.api [--port 8000] [--host 127.0.0.1]``: gunicorn serving ``create_app()``.

The settings are parsed and the database is checked here, before gunicorn starts, so a
bad configuration stops the process with one line naming the variable. A database that is
down or busy is no configuration error: the API serves, ``/readyz`` answering 503 until the
database answers.
"""

from __future__ import annotations

# First of all: the standard library made cooperative (sockets, threads, sleeps) for gevent's
# event loop, before anything else imports it (see yardmaster.api.serving).
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

from flask import Flask  # noqa: E402
from gunicorn.app.base import BaseApplication  # noqa: E402

from yardmaster.api.gunicorn_conf import gunicorn_options, within_open_files_limit  # noqa: E402
from yardmaster.api.metrics_dir import use_multiprocess_dir  # noqa: E402
from yardmaster.shared import lifecycle  # noqa: E402
from yardmaster.shared.services import Service  # noqa: E402
from yardmaster.shared.settings import Settings  # noqa: E402

log = logging.getLogger("yardmaster.api")


class ApiServer(BaseApplication):  # type: ignore[misc]
    """gunicorn, configured in code, building one application per worker."""

    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if value is not None:
                self.cfg.set(key, value)

    def load(self) -> Flask:
        # imported here, not at the top: the application imports prometheus-client, which
        # must not be imported before main() has set the metrics' multiprocess folder
        from yardmaster.api.app import create_app

        return create_app(self.settings)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m yardmaster.api", description=__doc__)
    parser.add_argument("--port", help="overrides YARDMASTER_API_PORT (default 8000)")
    parser.add_argument("--host", help="overrides YARDMASTER_API_HOST (default 127.0.0.1)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Start the API server; return its exit status."""
    args = parse_args(argv)
    overrides = {k: v for k, v in (("api_port", args.port), ("api_host", args.host)) if v}
    settings = within_open_files_limit(lifecycle.start(Service.API, **overrides))
    lifecycle.check_database(Service.API, settings)
    use_multiprocess_dir(settings.api_metrics_dir)
    log.info("serving on http://%s:%d", settings.api_host, settings.api_port)
    ApiServer(settings, gunicorn_options(settings, settings.api_host, settings.api_port)).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
