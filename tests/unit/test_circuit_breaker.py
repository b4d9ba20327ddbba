"""The per-account circuit breaker, driven by explicit times (no sleeping)."""

from __future__ import annotations

from paygrid.domain.circuit import CircuitBreaker, CircuitState

THRESHOLD, COOLDOWN = 3, 30.0


def opened(at: float = 100.0) -> CircuitBreaker:
    breaker = CircuitBreaker(THRESHOLD, COOLDOWN)
    for _ in range(THRESHOLD):
        assert breaker.allow(at)
        breaker.record_failure(at)
    return breaker


def test_closed_until_threshold_consecutive_failures() -> None:
    breaker = CircuitBreaker(THRESHOLD, COOLDOWN)
    assert breaker.state(0.0) is CircuitState.CLOSED
    for n in range(THRESHOLD - 1):
        breaker.record_failure(float(n))
        assert breaker.state(float(n)) is CircuitState.CLOSED
        assert breaker.allow(float(n))
    breaker.record_failure(5.0)
    assert breaker.state(5.0) is CircuitState.OPEN
    assert not breaker.allow(5.0)
    assert not breaker.allow(5.0 + COOLDOWN - 0.001)


def test_a_success_resets_the_count() -> None:
    breaker = CircuitBreaker(THRESHOLD, COOLDOWN)
    for _ in range(THRESHOLD - 1):
        breaker.record_failure(1.0)
    breaker.record_success()
    assert breaker.failures == 0
    for _ in range(THRESHOLD - 1):
        breaker.record_failure(2.0)
    assert breaker.state(2.0) is CircuitState.CLOSED  # not THRESHOLD in a row
    breaker.record_failure(2.0)
    assert breaker.state(2.0) is CircuitState.OPEN


def test_half_open_lets_exactly_one_probe_through_after_the_cooldown() -> None:
    breaker = opened(at=100.0)
    assert not breaker.allow(100.0 + COOLDOWN - 1)
    later = 100.0 + COOLDOWN
    assert breaker.state(later) is CircuitState.HALF_OPEN
    assert breaker.allow(later)  # the probe
    assert not breaker.allow(later)  # everyone else waits for it
    assert not breaker.allow(later + 1_000)  # however long the probe takes


def test_probe_success_closes_the_circuit() -> None:
    breaker = opened()
    later = 100.0 + COOLDOWN
    assert breaker.allow(later)
    breaker.record_success()
    assert breaker.state(later) is CircuitState.CLOSED
    assert breaker.allow(later) and breaker.allow(later)
    # Fully reset: it takes THRESHOLD new failures to open again.
    for _ in range(THRESHOLD - 1):
        breaker.record_failure(later)
    assert breaker.state(later) is CircuitState.CLOSED


def test_probe_failure_reopens_for_a_whole_cooldown() -> None:
    breaker = opened(at=100.0)
    probe_at = 100.0 + COOLDOWN + 5
    assert breaker.allow(probe_at)
    breaker.record_failure(probe_at)  # one failure is enough while probing
    assert breaker.state(probe_at) is CircuitState.OPEN
    assert not breaker.allow(probe_at + COOLDOWN - 1)
    assert breaker.allow(probe_at + COOLDOWN)  # the next probe
    assert not breaker.allow(probe_at + COOLDOWN)


def test_threshold_of_one() -> None:
    breaker = CircuitBreaker(1, COOLDOWN)
    breaker.record_failure(0.0)
    assert breaker.state(0.0) is CircuitState.OPEN


def test_a_released_probe_frees_the_slot_without_a_verdict() -> None:
    breaker = opened(at=100.0)
    later = 100.0 + COOLDOWN
    assert breaker.allow(later)
    breaker.release()  # the probe was cancelled
    assert breaker.state(later) is CircuitState.HALF_OPEN
    assert breaker.allow(later)  # a new probe may go
    assert not breaker.allow(later)
