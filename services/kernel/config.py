"""Settings from the environment (prefix `ATTUNE_`), validated once at start-up."""

import contextlib
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, Self

from limits import parse
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from services.kernel.crypto import SecretBox

# The prefix of every API key (services/kernel/auth.py imports it from here).
KEY_PREFIX = "att_"
# SMART Backend Services access tokens (services/smart/tokens.py): told apart from API keys.
ACCESS_TOKEN_PREFIX = "ats_"  # noqa: S105  (a prefix, not a secret)
DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///./var/attune.db"
# Placeholders that ship in docs and examples; a real deployment must never run on them.
PLACEHOLDER_SECRETS = frozenset({"", "changethis", "change-me", "dev-secret-key", "secret"})
DEV_SECRET = "dev-secret-key"  # noqa: S105  (development only; refused elsewhere)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ATTUNE_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = DEFAULT_SQLITE_URL
    # A PostgreSQL streaming standby for long reads (exports, bulk FHIR files), so they do not
    # compete with clinical writes; unset or unhealthy, the primary serves them
    # (services/kernel/replica.py).
    replica_database_url: str | None = None
    # How long the replica's health check may take before the primary is used instead.
    replica_check_seconds: float = Field(default=2.0, gt=0, le=60)
    # Keyed hash for API keys and other high-entropy tokens; the key that encrypts stored
    # secrets is derived from it (services/kernel/crypto.py).
    secret_key: SecretStr = SecretStr(DEV_SECRET)
    # Previous values of secret_key, comma-separated: they still verify API keys and open
    # secrets sealed under them, until `attune rotate-secrets` has sealed those anew.
    secret_keys_old: Annotated[list[SecretStr], NoDecode] = []
    bootstrap_key: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    db_pool_size: int = Field(default=10, ge=1, le=200)
    # Connecting, waiting for a pooled connection, SQLite's busy wait.
    db_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    # One statement on PostgreSQL.
    db_command_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    # From the request's arrival until its response starts (a streamed body may take longer);
    # past it the client gets a 503 problem with Retry-After. 0 turns it off.
    request_timeout_seconds: float = Field(default=30.0, ge=0, le=3600)
    # Open connections and requests one `attune serve` process takes; past it, new ones get 503.
    limit_concurrency: int = Field(default=1000, ge=1)
    # Origins allowed to call the API from a browser (CORS), comma-separated; none by default.
    cors_origins: Annotated[list[str], NoDecode] = []
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # The webhook worker (services/webhooks/delivery.py); `attune run` starts one unless false.
    worker: bool = True
    worker_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    worker_batch_size: int = Field(default=20, ge=1, le=500)
    # The worker's sweep of time-based alert checks (services/alerts/sweep.py), every so often.
    sweep_seconds: float = Field(default=300.0, gt=0, le=86400)
    # The worker's own HTTP server (/healthz, /metrics; api/worker_server.py) on ATTUNE_HOST;
    # 0 turns it off.
    worker_port: int = Field(default=8001, ge=0, le=65535)
    # Retention (services/retention/): how often the worker purges, and how long rows are kept.
    # Idempotency records go when they expire (24 h, DESIGN.md §4). Outbox events (their payloads
    # summarise scores and alerts) go once no delivery still needs them; the delivery log (finished
    # deliveries and attempts, what `GET /v1/webhooks/{id}/deliveries` shows) after longer.
    retention_interval_seconds: float = Field(default=3600.0, gt=0, le=7 * 86400)
    retention_outbox_days: int = Field(default=7, ge=1, le=3650)
    retention_delivery_log_days: int = Field(default=30, ge=1, le=3650)
    # An expected-response fit over more closed episodes than this runs in the worker
    # (services/trajectory/fit_worker.py), and POST .../etr/fit answers 202 with the job.
    etr_fit_inline_max_episodes: int = Field(default=2000, ge=0)
    # Webhook targets on private, loopback or link-local addresses: development and tests only.
    webhook_allow_private: bool = False
    # Ports webhook URLs may name outside development (services/webhooks/targets.py).
    webhook_allowed_ports: Annotated[list[Annotated[int, Field(ge=1, le=65535)]], NoDecode] = [
        80,
        443,
        8080,
        8443,
    ]
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_max_attempts: int = Field(default=12, ge=1, le=100)
    webhook_retry_base_seconds: float = Field(default=10.0, ge=0, le=3600)
    webhook_retry_max_seconds: float = Field(default=6 * 3600.0, ge=0, le=7 * 86400)
    webhook_disable_after_failures: int = Field(default=50, ge=1, le=10_000)
    # Exports end this long before now by default, so that a write transaction still in flight
    # when an export runs is caught by the next pull (services/exports/window.py).
    export_settle_seconds: float = Field(default=30.0, ge=0, le=3600)
    # Rate limits (api/ratelimit.py), in the `limits` library's notation ("20/minute"), counted
    # in the database so every replica agrees. Failed authentication (API keys, invitation
    # tokens) per client address is on by default: brute force never gets thousands of tries.
    # Per API key is off by default: one EHR integration legitimately sends bursts.
    rate_limit_auth_failures: str | None = "20/minute"
    rate_limit_per_key: str | None = None
    # Exports (identified, de-identified, FHIR bulk files) one organisation may run at once.
    export_max_concurrent: int = Field(default=4, ge=1, le=1000)
    # An organisation's own instrument definitions: size of one version, versions per code.
    instrument_max_bytes: int = Field(default=256 * 1024, ge=1024)
    instrument_max_versions: int = Field(default=50, ge=1, le=10_000)
    # Base of every absolute URL the service writes (FHIR Content-Location, links); never the
    # Host header. Unset: http://ATTUNE_HOST:ATTUNE_PORT.
    public_url: str | None = Field(default=None, pattern=r"^https?://[^/?#\s]+(/[^?#\s]*)?$")
    # Addresses (or networks) of reverse proxies whose X-Forwarded-For / -Proto are believed.
    trusted_proxies: Annotated[list[str], NoDecode] = []
    # Lifetime of a SMART Backend Services access token (SMART recommends five minutes).
    smart_token_seconds: int = Field(default=300, ge=30, le=3600)

    @field_validator("rate_limit_auth_failures", "rate_limit_per_key")
    @classmethod
    def _parse_rate_limit(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            return None  # set but empty: off
        if value is not None:
            try:
                parse(value)
            except ValueError as exc:
                raise ValueError(f"not a rate limit like '20/minute': {exc}") from exc
        return value

    @field_validator("cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("secret_keys_old", mode="before")
    @classmethod
    def _split_old_secrets(cls, value: object) -> object:
        if isinstance(value, str):
            return [secret.strip() for secret in value.split(",") if secret.strip()]
        return value

    @field_validator("webhook_allowed_ports", mode="before")
    @classmethod
    def _split_ports(cls, value: object) -> object:
        if isinstance(value, str):
            return [port.strip() for port in value.split(",") if port.strip()]
        return value

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Self:
        bootstrap = self.bootstrap_key
        if bootstrap is not None and not bootstrap.get_secret_value().startswith(KEY_PREFIX):
            # Every API key starts with the prefix (services/kernel/auth.py); such a key would
            # be stored and then never authenticate.
            raise ValueError(f"ATTUNE_BOOTSTRAP_KEY must start with '{KEY_PREFIX}'")
        if self.environment == "development":
            return self
        if self.secret_key.get_secret_value() in PLACEHOLDER_SECRETS:
            raise ValueError(
                "ATTUNE_SECRET_KEY is a placeholder; set a long random value outside development"
            )
        if bootstrap is not None and len(bootstrap.get_secret_value()) < 24:
            raise ValueError("ATTUNE_BOOTSTRAP_KEY must be at least 24 characters")
        return self

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        _, _, path = self.database_url.partition(":///")
        return Path(path) if path and path != ":memory:" else None

    def old_secrets(self) -> list[str]:
        return [s.get_secret_value() for s in self.secret_keys_old]

    def secret_box(self) -> SecretBox:
        """Seals and opens the secrets stored in the database (services/kernel/crypto.py)."""
        return _secret_box(self.secret_key.get_secret_value(), tuple(self.old_secrets()))

    def prepare_sqlite_file(self) -> None:
        """Create the SQLite file's folder, and the file itself readable and writable by its
        owner only (0600), whatever the umask: it holds health data. SQLite gives the
        write-ahead log and shared-memory files the database file's permissions; a file (or
        log) left readable by others by an older version is tightened."""
        path = self.sqlite_path()
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            with contextlib.suppress(FileNotFoundError):
                if file.stat().st_mode & 0o077:
                    file.chmod(0o600)


@lru_cache(maxsize=8)
def _secret_box(current: str, old: tuple[str, ...]) -> SecretBox:
    # HKDF per key once per process, not per delivery or export.
    return SecretBox(current, old)


@lru_cache
def get_settings() -> Settings:
    return Settings()
