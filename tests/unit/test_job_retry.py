"""Retry schedules and what follows a failed attempt."""

from __future__ import annotations

from datetime import timedelta

import pytest

from paygrid.worker.retry import Retry, RetryPolicy, after_failure


def test_policy_walks_its_delays_then_runs_out() -> None:
    policy = RetryPolicy((5.0, 30.0))
    assert policy.max_attempts == 3
    assert [policy.delay_after(attempt) for attempt in (1, 2, 3, 4)] == [5.0, 30.0, None, None]


def test_policy_without_delays_allows_one_attempt() -> None:
    policy = RetryPolicy(())
    assert policy.max_attempts == 1
    assert policy.delay_after(1) is None


@pytest.mark.parametrize("delays", [(-1.0,), (10.0, -0.5)])
def test_negative_delays_are_refused(delays: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(delays)


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        RetryPolicy((1.0,)).delay_after(0)


def test_one_off_job_retries_then_dies() -> None:
    policy = RetryPolicy((10.0,))
    assert after_failure(policy, 1, None) == Retry(10.0, next_period=False)
    assert after_failure(policy, 2, None) is None


def test_periodic_job_retries_then_waits_for_its_next_period() -> None:
    policy = RetryPolicy((60.0,))
    every = timedelta(minutes=10)
    assert after_failure(policy, 1, every) == Retry(60.0, next_period=False)
    assert after_failure(policy, 2, every) == Retry(600.0, next_period=True)
