"""Settings: one value, parsed once per process from ``YARDMASTER_*`` environment variables.

Every variable is listed, with its default, in ``.env.example`` at the repository root.
Parsing is strict: a malformed value raises :class:`ConfigurationError` naming the
variable, and nothing reads the environment anywhere else.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import redis
from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from yardmaster.shared.access import TokenTable
from yardmaster.shared.errors import ConfigurationError

ENV_PREFIX = "YARDMASTER_"
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
REDIS_SCHEMES = ("redis", "rediss", "unix")
DATABASE_BACKENDS = ("sqlite", "postgresql")
#: What a key derived from the access tokens is for (another purpose derives another key).
SIGNING_KEY_PURPOSE = "yardmaster signed URLs v1"
MIN_SIGNING_KEY_LENGTH = 16
#: Settings whose value a configuration error never repeats (it would land in logs).
SECRET_FIELDS = frozenset({"api_tokens", "admin_token", "url_signing_key"})


class Settings(BaseSettings):
    """Configuration shared by every process; field ``x`` is read from ``YARDMASTER_X``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="ignore", env_ignore_empty=True
    )

    data_dir: Path = Path(".data")
    redis_url: str = "redis://127.0.0.1:6379/0"
    database_url: str = ""
    bucket_dir: Path | None = None
    log_level: LogLevel = "INFO"
    instance: str = ""
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    api_workers: int = Field(default=2, ge=1, le=64)
    api_connections: int = Field(default=10_000, ge=16, le=1_000_000)
    api_read_timeout: float = Field(default=10.0, gt=0, le=3600)
    streams_per_process: int = Field(default=8_000, ge=1, le=1_000_000)
    streams_per_address: int = Field(default=100, ge=1, le=1_000_000)
    stream_keepalive: float = Field(default=15.0, gt=0, le=300)
    connect_timeout: float = Field(default=5.0, gt=0, le=300)
    database_busy_timeout: float = Field(default=5.0, gt=0, le=300)
    heartbeat_interval: float = Field(default=5.0, gt=0, le=300)
    seconds_in_min: float = Field(default=60.0, gt=0)
    files_dir: Path | None = None
    job_lease_seconds: float = Field(default=6.0, ge=1, le=600)
    stop_grace_seconds: float = Field(default=5.0, gt=0, le=3600)
    max_upload_mb: int = Field(default=512, ge=1)
    file_lease_ttl: float | None = Field(default=None, gt=0, le=3600)
    file_poll: float | None = Field(default=None, gt=0, le=60)
    file_heartbeat: float | None = Field(default=None, gt=0, le=3600)
    file_max_attempts: int = Field(default=5, ge=1, le=100)
    scheduling: Literal["priority", "fifo"] = "priority"
    aging_base_seconds: float = Field(default=30.0, gt=0, le=86400)
    site_share: float = Field(default=0.5, gt=0, le=1)
    work_time_scale: float = Field(default=1.0, gt=0, le=1000)
    queue_head_seconds: float = Field(default=60.0, gt=0, le=86400)
    queue_view_seconds: float = Field(default=60.0, gt=0, le=86400)
    queue_ban_seconds: float = Field(default=3600.0, gt=0, le=365 * 86400)
    queue_tokens_per_address: int = Field(default=5, ge=1, le=2600)
    trusted_proxies: int = Field(default=0, ge=0, le=10)
    metrics_dir: Path | None = None
    api_tokens: Annotated[TokenTable, NoDecode] = Field(default_factory=TokenTable.empty)
    admin_token: str = Field(default="", repr=False)
    url_signing_key: str = Field(default="", repr=False)
    signed_url_seconds: float = Field(default=300.0, gt=0, le=3600)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("redis_url")
    @classmethod
    def _known_redis_scheme(cls, value: str) -> str:
        scheme = value.partition("://")[0]
        if "://" not in value or scheme not in REDIS_SCHEMES:
            raise ValueError(
                f"must start with one of {', '.join(s + '://' for s in REDIS_SCHEMES)}"
            )
        try:
            redis.ConnectionPool.from_url(value)
        except ValueError as exc:
            raise ValueError(f"not a Redis URL ({exc})") from None
        return value

    @field_validator("admin_token")
    @classmethod
    def _admin_token_is_no_customers(cls, value: str, info: ValidationInfo) -> str:
        tokens = info.data.get("api_tokens")
        if isinstance(tokens, TokenTable):
            tokens.with_admin_token(value)  # refuses a customer's token
        return value

    @field_validator("url_signing_key")
    @classmethod
    def _long_enough_to_keep_secret(cls, value: str) -> str:
        if value and len(value) < MIN_SIGNING_KEY_LENGTH:
            raise ValueError(
                f"must be at least {MIN_SIGNING_KEY_LENGTH} characters (a random secret, "
                "the same for every API process)"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        return normalise_database_url(value) if value else value

    @field_validator("streams_per_process")
    @classmethod
    def _streams_leave_room_for_requests(cls, value: int, info: ValidationInfo) -> int:
        connections = info.data.get("api_connections")
        if isinstance(connections, int) and value >= connections:
            raise ValueError(
                f"must be below YARDMASTER_API_CONNECTIONS ({connections}): the connections "
                "left over serve every other request"
            )
        return value

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        data_dir = self.data_dir.expanduser().absolute()
        object.__setattr__(self, "data_dir", data_dir)
        if self.bucket_dir is None:
            object.__setattr__(self, "bucket_dir", data_dir / "bucket")
        if self.files_dir is None:
            object.__setattr__(self, "files_dir", data_dir / "files")
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{data_dir / 'yardmaster.db'}")
        if not self.instance:
            object.__setattr__(self, "instance", f"{socket.gethostname()}-{os.getpid()}")
        return self

    @property
    def bucket(self) -> Path:
        """The bucket directory shared by the simulator and the file workers."""
        assert self.bucket_dir is not None  # set by _derive_paths
        return self.bucket_dir

    @property
    def files(self) -> Path:
        """Uploads and job results; shared by the API and the report workers."""
        assert self.files_dir is not None  # set by _derive_paths
        return self.files_dir

    @property
    def access_tokens(self) -> TokenTable:
        """Every token the API accepts: ``YARDMASTER_API_TOKENS`` plus the admin token."""
        return self.api_tokens.with_admin_token(self.admin_token)

    @property
    def signing_key(self) -> bytes:
        """The key of the API's signed URLs: ``YARDMASTER_URL_SIGNING_KEY``, else one derived
        from the access tokens, so every API process and replica given the same tokens signs
        alike with no more configuration (and URLs signed before the tokens change stop
        working with them). Empty when neither is set (the API runs open)."""
        if self.url_signing_key:
            return self.url_signing_key.encode()
        return self.access_tokens.derive_key(SIGNING_KEY_PURPOSE)

    @property
    def run_dir(self) -> Path:
        """Where processes leave their liveness files for container healthchecks."""
        return self.data_dir / "run"

    @property
    def api_metrics_dir(self) -> Path:
        """Where the API's gunicorn workers share their request metrics (emptied at start)."""
        return (self.metrics_dir or self.run_dir / "api-metrics").expanduser().absolute()


def normalise_database_url(url: str) -> str:
    """Check a SQLAlchemy URL and pin PostgreSQL to the psycopg 3 driver.

    ``postgresql://`` and ``postgres://`` would otherwise pick psycopg2, which is not
    installed; a URL naming any other backend is refused.
    """
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ValueError(f"not a database URL ({exc})") from None
    if parsed.get_backend_name() not in DATABASE_BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(DATABASE_BACKENDS)}")
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Parse settings from ``environ`` (default: the process environment) plus overrides.

    Raises :class:`ConfigurationError` naming the first bad variable.
    """
    source = os.environ if environ is None else environ
    values = {
        key[len(ENV_PREFIX) :].lower(): value
        for key, value in source.items()
        if key.startswith(ENV_PREFIX) and value != ""
    }
    values.update(overrides)
    known = {name for name in Settings.model_fields}
    try:
        return Settings.model_validate({k: v for k, v in values.items() if k in known})
    except ValidationError as exc:
        raise _configuration_error(exc, values) from None


def _configuration_error(exc: ValidationError, values: Mapping[str, Any]) -> ConfigurationError:
    first = exc.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "settings"
    variable = ENV_PREFIX + field.upper()
    message = str(first["msg"]).removeprefix("Value error, ")
    if field in SECRET_FIELDS:
        return ConfigurationError(variable, message)
    return ConfigurationError(variable, f"{message} (got {values.get(field, '')!r})")
