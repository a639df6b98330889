"""Settings: laptop defaults, strict parsing, one clear error naming the variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from support import REPO
from yardmaster.shared.errors import ConfigurationError
from yardmaster.shared.settings import ENV_PREFIX, Settings, load_settings


def test_defaults_work_on_a_laptop_with_nothing_installed(tmp_path: Path) -> None:
    settings = load_settings({"YARDMASTER_DATA_DIR": str(tmp_path)})

    assert settings.database_url == f"sqlite:///{tmp_path / 'yardmaster.db'}"
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.bucket == tmp_path / "bucket"
    assert settings.api_host == "127.0.0.1"
    assert settings.api_port == 8000
    assert settings.log_level == "INFO"
    assert settings.instance


def test_a_relative_data_dir_is_resolved_once_against_the_working_directory() -> None:
    settings = load_settings({"YARDMASTER_DATA_DIR": ".data"})

    assert settings.data_dir == Path.cwd() / ".data"


def test_values_are_read_from_prefixed_variables() -> None:
    settings = load_settings(
        {
            "YARDMASTER_API_PORT": "9001",
            "YARDMASTER_LOG_LEVEL": "debug",
            "YARDMASTER_REDIS_URL": "redis://cache:6380/2",
            "YARDMASTER_BUCKET_DIR": "/srv/bucket",
            "YARDMASTER_SECONDS_IN_MIN": "0.001",
            "YARDMASTER_INSTANCE": "fw-a",
        }
    )

    assert settings.api_port == 9001
    assert settings.log_level == "DEBUG"
    assert settings.redis_url == "redis://cache:6380/2"
    assert settings.bucket == Path("/srv/bucket")
    assert settings.seconds_in_min == 0.001
    assert settings.instance == "fw-a"


def test_an_empty_variable_means_the_default() -> None:
    assert load_settings({"YARDMASTER_API_PORT": ""}).api_port == 8000


def test_overrides_from_the_command_line_win_over_the_environment() -> None:
    assert load_settings({"YARDMASTER_API_PORT": "9001"}, api_port="9002").api_port == 9002


@pytest.mark.parametrize(
    "url",
    ["postgresql://u:p@db/x", "postgres://u:p@db/x", "postgresql+psycopg://u:p@db/x"],
)
def test_postgresql_urls_use_the_installed_psycopg_3_driver(url: str) -> None:
    assert load_settings({"YARDMASTER_DATABASE_URL": url}).database_url == (
        "postgresql+psycopg://u:p@db/x"
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("YARDMASTER_API_PORT", "80a"),
        ("YARDMASTER_API_PORT", "0"),
        ("YARDMASTER_API_PORT", "70000"),
        ("YARDMASTER_LOG_LEVEL", "LOUD"),
        ("YARDMASTER_REDIS_URL", "http://127.0.0.1:6379"),
        ("YARDMASTER_REDIS_URL", "redis://127.0.0.1:notaport/0"),
        ("YARDMASTER_DATABASE_URL", "mysql://root@127.0.0.1/test"),
        ("YARDMASTER_DATABASE_URL", "not a url"),
        ("YARDMASTER_API_WORKERS", "0"),
        ("YARDMASTER_CONNECT_TIMEOUT", "-1"),
        ("YARDMASTER_SECONDS_IN_MIN", "0"),
        ("YARDMASTER_HEARTBEAT_INTERVAL", "soon"),
    ],
)
def test_a_bad_value_is_refused_with_one_line_naming_the_variable(
    variable: str, value: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({variable: value})

    message = str(caught.value)
    assert caught.value.variable == variable
    assert message.startswith(f"{variable}: ")
    assert repr(value) in message
    assert "\n" not in message


def test_every_setting_is_listed_in_env_example_and_nothing_else_is() -> None:
    example = (REPO / ".env.example").read_text()
    listed = set(re.findall(rf"^{ENV_PREFIX}([A-Z_]+)=", example, flags=re.MULTILINE))

    assert listed == {name.upper() for name in Settings.model_fields}


def test_env_example_values_are_themselves_valid_settings() -> None:
    example = (REPO / ".env.example").read_text()
    pairs = dict(re.findall(rf"^({ENV_PREFIX}[A-Z_]+)=(.*)$", example, flags=re.MULTILINE))

    load_settings(pairs)
