"""Test clocks: their states, and how long one lives. Pure.

A clock is ``ready`` at its frozen time; an advance makes it ``advancing`` until the worker
has run every due moment up to the target, then ``ready`` again. An advance that keeps
failing leaves it ``internal_failure``, where it stays (it can still be deleted), as
Stripe's does."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from paygrid.domain.errors import InvalidRequest, PaygridError

LIFETIME: Final = timedelta(days=30)
"""``deletes_after`` is this long after ``created`` (Stripe deletes a clock then)."""


class TestClockStatus(StrEnum):
    __test__ = False  # not a pytest test class, whatever its name

    READY = "ready"
    ADVANCING = "advancing"
    INTERNAL_FAILURE = "internal_failure"


def advance_allowed(current: datetime, target: datetime) -> bool:
    """A clock only moves forward: the target must be strictly after its frozen time."""
    return target > current


class TestModeOnly(InvalidRequest):
    """Test clocks exist in test mode only; use a test-mode key (sk_test_...)."""

    __test__ = False

    default_code = "test_mode_only"


class FrozenTimeNotAfterCurrent(InvalidRequest):
    """A test clock only moves forward: frozen_time must be after its current frozen time."""

    default_code = "frozen_time_not_after_current"


class TestClockAdvancing(PaygridError):
    """The test clock is advancing; wait until its status is ready."""

    __test__ = False
    status_code = 409
    error_type = "invalid_request_error"
    default_code = "test_clock_advancing"


class TestClockFailed(PaygridError):
    """The test clock failed to advance (status internal_failure) and cannot advance again;
    delete it and create a new one."""

    status_code = 409
    error_type = "invalid_request_error"
    default_code = "test_clock_internal_failure"


def not_ready(status: TestClockStatus, *, param: str | None = None) -> PaygridError:
    """The error for acting on a clock that is not ``ready``."""
    error = TestClockAdvancing if status is TestClockStatus.ADVANCING else TestClockFailed
    return error(param=param, current_status=status.value)
