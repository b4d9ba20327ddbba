"""Runtime configuration: every knob is a ``PAYGRID_*`` environment variable."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from paygrid.crypto import KeyRing

SimulatorFailureMode = Literal["none", "processing_error", "timeout", "unavailable"]
FAILURE_MODES: frozenset[str] = frozenset(get_args(SimulatorFailureMode))


class Settings(BaseSettings):
    """Settings read from the environment (see the table in README.md)."""

    model_config = SettingsConfigDict(env_prefix="PAYGRID_", extra="ignore")

    database_url: SecretStr | None = Field(
        default=None, description="PostgreSQL URL; unset starts the embedded pgserver."
    )
    data_dir: Path = Field(default=Path(".paygrid"), description="Embedded database directory.")
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
    requires_action_expiry_hours: float = Field(
        default=24.0,
        gt=0,
        description="A payment left in requires_action this long is synced one last time, "
        "then canceled.",
    )
    amqp_url: SecretStr | None = Field(
        default=None,
        description="RabbitMQ URL; set, every committed event is also published to the "
        "paygrid.events topic exchange.",
    )

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
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
