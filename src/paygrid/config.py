"""Runtime configuration: every knob is a ``PAYGRID_*`` environment variable."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SimulatorFailureMode = Literal["none", "processing_error", "timeout", "unavailable"]


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

    def bookkeeping_pool_size(self) -> int:
        """The asynchronous-commit pool is a quarter of the main pool (at least 4), so one
        worker holds at most 1.25 x PAYGRID_DB_POOL_SIZE connections."""
        return max(4, self.db_pool_size // 4)

    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
