"""The API server's gunicorn workers share their request metrics through one emptied folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, values
from prometheus_client.multiprocess import MultiProcessCollector

from yardmaster.api.metrics import MULTIPROC_ENV, RequestMetrics, use_multiprocess_dir


def test_request_metrics_go_to_the_folder_emptied_of_an_earlier_runs_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "api-metrics"
    folder.mkdir()
    (folder / "histogram_4242.db").write_bytes(b"an earlier run")
    monkeypatch.setenv(MULTIPROC_ENV, "")  # restored (unset) after the test
    monkeypatch.setattr(values, "ValueClass", values.ValueClass)

    use_multiprocess_dir(folder)
    metrics = RequestMetrics()
    metrics.latency.labels("/healthz", "GET", "200").observe(0.01)
    metrics.latency.labels("/healthz", "GET", "200").observe(0.02)

    assert not (folder / "histogram_4242.db").exists()
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(folder))  # what a scrape in another worker reads
    count = registry.get_sample_value(
        "yardmaster_http_request_duration_seconds_count",
        {"endpoint": "/healthz", "method": "GET", "status": "200"},
    )
    assert count == 2
    values.ValueClass.close_all_files()
