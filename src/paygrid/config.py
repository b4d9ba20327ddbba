"""Runtime configuration: every knob is a ``PAYGRID_*`` environment variable."""

from __future__ import annotations

from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args

import limits
import platformdirs
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from paygrid.crypto import KeyRing

SimulatorFailureMode = Literal["none", "processing_error", "timeout", "unavailable"]
FAILURE_MODES: frozenset[str] = frozenset(get_args(SimulatorFailureMode))


class Settings(BaseSettings):
    """Settings read from the environment (every one is in docs/configuration.md)."""

    model_config = SettingsConfigDict(env_prefix="PAYGRID_", extra="ignore")

    database_url: SecretStr | None = Field(
        default=None, description="PostgreSQL URL; unset starts the embedded pgserver."
    )
    database_direct_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL URL that bypasses a pooler, for what needs a session of its "
        "own: LISTEN and migrations. Unset: PAYGRID_DATABASE_URL.",
    )
    database_pooler: Literal["none", "transaction"] = Field(
        default="none",
        description="`transaction`: PAYGRID_DATABASE_URL is a pooler in transaction mode "
        "(PgBouncer): no prepared-statement cache, no session settings (docs/deploy.md).",
    )
    read_database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL URL of a read replica for reports (their queries and report "
        "runs' reads); unset: reports read from PAYGRID_DATABASE_URL.",
    )
    read_db_pool_size: int = Field(
        default=4, ge=1, description="Connections of the read replica's pool (per process)."
    )
    data_dir: Path = Field(
        # Per user, not per working directory: every command finds the same database.
        default_factory=lambda: platformdirs.user_data_path("paygrid"),
        description="The embedded database, the demo's keys and the generated encryption key.",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = Field(
        default=None, description="Base URL customers' browsers reach (redirect pages)."
    )
    log_level: str = "INFO"
    db_pool_size: int = Field(default=32, ge=2)
    http_workers: int = Field(default=1, ge=1, description="uvicorn worker processes.")
    max_body_bytes: int = 1_048_576
    idempotency_ttl_hours: int = 24
    idempotency_lock_seconds: int = Field(
        default=60, description="After this, an in-progress key whose request died is resumed."
    )
    simulator_latency_ms: int = Field(default=0, ge=0)
    simulator_failure_mode: SimulatorFailureMode = "none"
    simulator_request_latency_ms: int = Field(
        default=0,
        ge=0,
        description="How long a request takes to reach the simulator, before it acts (crash "
        "drills); PAYGRID_SIMULATOR_LATENCY_MS is how long its answer takes to come back.",
    )
    demo_store: bool = Field(
        default=False,
        description="Serve the demo store at /demo/store (paygrid serve --demo sets it).",
    )
    worker_in_process: bool = Field(
        default=True, description="paygrid serve also runs a job worker in each HTTP worker."
    )
    worker_concurrency: int = Field(default=16, ge=1, description="Jobs a worker runs at once.")
    worker_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often an idle worker looks for due jobs."
    )
    worker_lease_seconds: float = Field(
        default=30.0, gt=0, description="A dead worker's jobs are reclaimed after this."
    )
    worker_shutdown_seconds: float = Field(
        default=5.0, ge=0, description="On stop, how long in-flight jobs get to finish."
    )
    encryption_key: SecretStr | None = Field(
        default=None,
        description="Comma-separated base64 32-byte keys; the first encrypts, all decrypt. "
        "Unset: a key is generated once in <data dir>/encryption.key.",
    )
    webhook_retry_schedule: str = Field(
        default="0,60,300,1800,7200,18000,36000,86400",
        description="Seconds before each delivery attempt, comma-separated.",
    )
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    invoice_finalize_delay_seconds: int = Field(
        default=3600,
        ge=0,
        description="How long a subscription's renewal invoice stays a draft before it is "
        "finalized and charged.",
    )
    webhook_allowed_hosts: str = Field(
        default="",
        description="Comma-separated hosts live endpoints may use despite the SSRF guard.",
    )
    webhook_secret_overlap_hours: int = Field(
        default=24, ge=0, description="How long a rotated-out secret still signs deliveries."
    )
    connector_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long a provider call may take before its outcome counts as unknown.",
    )
    circuit_breaker_threshold: int = Field(
        default=5, ge=1, description="Consecutive provider failures that open an account's circuit."
    )
    circuit_breaker_cooldown_seconds: float = Field(
        default=30.0, gt=0, description="How long an open circuit waits before one probe call."
    )
    status_sync_schedule: str = Field(
        default="60,300,1800,7200,86400",
        description="Seconds after an unknown outcome at which the provider is asked again, "
        "comma-separated; the last repeats.",
    )
    not_sent_grace_seconds: int = Field(
        default=600,
        ge=1,
        description="An attempt still pending this long lost its process and is synced; if the "
        "provider then has no charge for it, it is marked not_sent and the payment returns to "
        "requires_payment_method.",
    )
    reconciliation_daily_at: time = Field(
        default=time(6, 0),
        description="Local time (HH:MM, in each merchant's time zone, merchants.timezone) of "
        "the daily reconciliation run of every enabled live Paystack account.",
    )
    requires_action_expiry_hours: float = Field(
        default=24.0,
        gt=0,
        description="A payment left in requires_action this long is synced one last time, "
        "then canceled.",
    )
    worker_metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Set: a standalone `paygrid worker` serves Prometheus metrics on this port "
        "(at PAYGRID_HOST).",
    )
    amqp_url: SecretStr | None = Field(
        default=None,
        description="RabbitMQ URL; set, every committed event is also published to the "
        "paygrid.events topic exchange.",
    )
    smtp_url: SecretStr | None = Field(
        default=None,
        description="SMTP server for emails to customers: smtp://user:password@host:port "
        "(smtps:// for implicit TLS). Unset: emails are recorded and shown in the dashboard, "
        "not sent.",
    )
    smtp_starttls: bool = Field(
        default=False, description="Upgrade an smtp:// connection with STARTTLS (required)."
    )
    smtp_timeout_seconds: float = Field(
        default=30.0, gt=0, description="How long one SMTP conversation may take."
    )
    email_from: str = Field(
        default="billing@paygrid.localhost",
        min_length=3,
        description="The From address of emails to customers; the display name is the "
        "merchant's name. Its domain also ends every email's Message-ID.",
    )
    otlp_endpoint: str | None = Field(
        default=None,
        description="OpenTelemetry collector's OTLP/HTTP URL (e.g. http://localhost:4318); "
        "set, a trace span per request and per provider call is exported there.",
    )
    rate_limit_per_key: str = Field(
        default="100/second",
        description="Requests one API key may make, in limits notation ('100/second').",
    )
    rate_limit_per_ip: str = Field(
        default="200/second", description="Requests one client IP address may make."
    )
    rate_limit_payments_per_customer: str = Field(
        default="10/second",
        description="POST /v1/payments requests naming one customer (per merchant and mode).",
    )
    trusted_proxy: bool = Field(
        default=False,
        description="Behind one reverse proxy: the client IP is the last X-Forwarded-For entry.",
    )
    redis_url: SecretStr | None = Field(
        default=None,
        description="Redis URL (redis:// or rediss://); set, rate limits are counted there and "
        "shared by every process, else in each process.",
    )
    redis_key_prefix: str = Field(
        default="paygrid", min_length=1, description="Prefix of the keys paygrid writes to Redis."
    )
    cors_origins: str = Field(
        default="*",
        description="Comma-separated browser origins allowed to call the publishable-key "
        "routes (POST /v1/payment_methods, /checkout/...) cross-origin; * allows any. No "
        "other route answers cross-origin requests, and credentials are never allowed.",
    )
    tls_certfile: Path | None = Field(
        default=None, description="PEM certificate: paygrid serve then serves HTTPS itself."
    )
    tls_keyfile: Path | None = Field(
        default=None, description="PEM private key of PAYGRID_TLS_CERTFILE."
    )
    behind_tls_proxy: bool = Field(
        default=False,
        description="A proxy in front terminates TLS: send Strict-Transport-Security and "
        "do not warn about serving plain HTTP.",
    )
    webhook_attempt_retention_days: int = Field(
        default=30,
        ge=1,
        description="Attempts of finished webhook deliveries (with the endpoint's response "
        "bodies) are deleted after this many days.",
    )
    provider_event_retention_days: int = Field(
        default=30,
        ge=1,
        description="Applied or ignored provider webhooks (raw bodies) are deleted after this "
        "many days; unmatched and pending ones are kept.",
    )

    dashboard_session_hours: float = Field(
        default=12.0, gt=0, description="How long a dashboard login lasts."
    )
    dashboard_login_limit: str = Field(
        default="5/15 minutes",
        description="Failed dashboard logins allowed per email and per client IP, in limits "
        "notation; more are refused until the window has passed.",
    )
    backup_dir: Path = Field(
        default_factory=lambda: platformdirs.user_data_path("paygrid") / "backups",
        description="Where paygrid backup create writes archives and backup list looks.",
    )
    pg_bin_dir: Path | None = Field(
        default=None,
        description="Directory of the pg_dump/pg_restore backups use; unset: picked by the "
        "server's major version (pgserver's, /usr/lib/postgresql/<major>/bin, then PATH).",
    )

    @field_validator(
        "rate_limit_per_key",
        "rate_limit_per_ip",
        "rate_limit_payments_per_customer",
        "dashboard_login_limit",
    )
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        limits.parse(value)  # raises ValueError, so a typo fails at start-up
        return value

    @model_validator(mode="after")
    def _pooler_needs_direct_url(self) -> Settings:
        # LISTEN through a transaction-mode pooler would look up but hear nothing, and the
        # lookup caches would then serve stale keys: refuse to start instead.
        if self.database_pooler == "transaction" and self.database_direct_url is None:
            raise ValueError(
                "PAYGRID_DATABASE_POOLER=transaction needs PAYGRID_DATABASE_DIRECT_URL"
            )
        return self

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("redis://", "rediss://")):
            raise ValueError("must start with redis:// or rediss://")
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("smtp://", "smtps://")):
            raise ValueError("must start with smtp:// or smtps://")
        return value

    def bookkeeping_pool_size(self) -> int:
        """The asynchronous-commit pool is a quarter of the main pool (at least 4), so one
        worker holds at most 1.25 x PAYGRID_DB_POOL_SIZE connections."""
        return max(4, self.db_pool_size // 4)

    def sync_delays(self) -> list[int]:
        return [int(part) for part in self.status_sync_schedule.split(",") if part.strip()]

    def retry_delays(self) -> list[int]:
        return [int(part) for part in self.webhook_retry_schedule.split(",") if part.strip()]

    def allowed_webhook_hosts(self) -> frozenset[str]:
        return frozenset(
            h.strip().lower() for h in self.webhook_allowed_hosts.split(",") if h.strip()
        )

    def key_ring(self) -> KeyRing:
        if self.encryption_key is not None:
            return KeyRing.from_setting(self.encryption_key.get_secret_value())
        return KeyRing.from_file(self.data_dir / "encryption.key")

    def base_url(self) -> str:
        scheme = "https" if self.tls_certfile is not None else "http"
        return (self.public_url or f"{scheme}://{self.host}:{self.port}").rstrip("/")

    def allowed_cors_origins(self) -> frozenset[str]:
        return frozenset(o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
