"""docker-compose.yml: valid against the Compose Specification, and shaped as designed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from support import REPO

COMPOSE = REPO / "docker-compose.yml"
APP_SERVICES = ["migrate", "api", "report-worker", "file-worker", "simulator"]
LONG_RUNNING = ["redis", "postgres", "api", "report-worker", "file-worker", "simulator"]


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text())["services"])


def test_the_compose_file_validates_against_the_compose_specification_schema() -> None:
    check = subprocess.run(
        [
            str(Path(sys.executable).parent / "check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE),
        ],
        capture_output=True,
        text=True,
    )

    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_every_long_running_service_has_a_healthcheck(services: dict[str, Any], name: str) -> None:
    assert services[name]["healthcheck"]["test"]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_process_runs_the_same_command_as_make_run(
    services: dict[str, Any], name: str
) -> None:
    command = services[name]["command"]

    assert command[:2] == ["python", "-m"]
    assert command[2].startswith("yardmaster.")


def test_only_the_one_shot_migrate_service_migrates(services: dict[str, Any]) -> None:
    migrating = [
        n for n, s in services.items() if "yardmaster.shared.migrate" in s.get("command", [])
    ]

    assert migrating == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    for name in ["api", "report-worker", "file-worker", "simulator"]:
        condition = services[name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully"


def test_app_services_wait_for_healthy_redis_and_postgres(services: dict[str, Any]) -> None:
    for name in ["api", "report-worker", "file-worker", "simulator"]:
        depends = services[name]["depends_on"]
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["postgres"]["condition"] == "service_healthy"


def test_published_ports_are_bound_to_loopback_only(services: dict[str, Any]) -> None:
    published = [p for s in services.values() for p in s.get("ports", [])]

    assert published == ["127.0.0.1:8000:8000"]


def test_two_file_workers_run_by_default_sharing_the_bucket_with_the_simulator(
    services: dict[str, Any],
) -> None:
    assert services["file-worker"]["deploy"] == {"mode": "replicated", "replicas": 2}
    assert "bucket:/bucket" in services["file-worker"]["volumes"]
    assert "bucket:/bucket" in services["simulator"]["volumes"]


def test_redis_persists_with_append_only_and_postgres_on_a_named_volume(
    services: dict[str, Any],
) -> None:
    assert "--appendonly" in services["redis"]["command"]
    assert "pg-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]


def test_the_image_runs_as_a_non_root_user() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    runtime_stage = dockerfile.split("AS runtime", 1)[1]

    assert "\nUSER yardmaster" in runtime_stage


def test_every_long_running_service_comes_back_after_a_crash(services: dict[str, Any]) -> None:
    for name in LONG_RUNNING:
        assert services[name].get("restart") == "unless-stopped", name
    assert "--resume" in services["simulator"]["command"]  # else its restart refuses the bucket
