"""The API server's gunicorn workers share their request metrics through one emptied folder."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

from support import PYTHON

# What `python -m yardmaster.api` does in its main process, then what a worker does once forked.
SERVER_THEN_WORKER = """
import sys
from pathlib import Path

import yardmaster.api.__main__  # the server's own imports
from yardmaster.api.metrics_dir import use_multiprocess_dir

assert "prometheus_client" not in sys.modules, "imported before the folder was set"
use_multiprocess_dir(Path(sys.argv[1]))
from yardmaster.api.metrics import RequestMetrics  # in a worker: the application's import

metrics = RequestMetrics()
metrics.latency.labels("/healthz", "GET", "200").observe(0.01)
metrics.latency.labels("/healthz", "GET", "200").observe(0.02)
"""

READ_AS_A_SCRAPE = """
import sys
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

registry = CollectorRegistry()
MultiProcessCollector(registry, path=sys.argv[1])
print(registry.get_sample_value(
    "yardmaster_http_request_duration_seconds_count",
    {"endpoint": "/healthz", "method": "GET", "status": "200"},
))
"""


def run(script: str, folder: Path) -> str:
    done = subprocess.run(
        [PYTHON, "-c", textwrap.dedent(script), str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_request_metrics_go_to_the_folder_emptied_of_an_earlier_runs_files(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "api-metrics"
    folder.mkdir()
    (folder / "histogram_4242.db").write_bytes(b"an earlier run")

    run(SERVER_THEN_WORKER, folder)

    assert not (folder / "histogram_4242.db").exists()
    assert run(READ_AS_A_SCRAPE, folder) == "2.0"
