"""A circuit breaker per connector account: after ``threshold`` consecutive failures the
circuit opens and calls fail fast (which counts as "never reached the provider", so routing
fails over); after ``cooldown`` seconds one probe call is let through (half-open). Its
success closes the circuit; its failure opens it again.

Pure: time is passed in, so tests drive it without sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(slots=True)
class CircuitBreaker:
    threshold: int = 5
    cooldown: float = 30.0
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False

    def state(self, now: float) -> CircuitState:
        if self.opened_at is None:
            return CircuitState.CLOSED
        if now - self.opened_at >= self.cooldown:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def allow(self, now: float) -> bool:
        """Whether a call may go out now. In half-open, only one probe at a time."""
        match self.state(now):
            case CircuitState.CLOSED:
                return True
            case CircuitState.OPEN:
                return False
            case CircuitState.HALF_OPEN:
                if self.probing:
                    return False
                self.probing = True
                return True

    def record_success(self) -> None:
        self.failures = 0
        self.opened_at = None
        self.probing = False

    def record_failure(self, now: float) -> None:
        self.failures += 1
        if self.probing or self.failures >= self.threshold:
            self.opened_at = now
        self.probing = False

    def release(self) -> None:
        """The call let through ended with no answer either way (it was cancelled): free the
        probe slot without judging the provider, so the next call may probe."""
        self.probing = False
