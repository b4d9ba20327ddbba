"""The one place a payment attempt row is built, and when status sync next asks about one.

Every call to a provider on behalf of a payment (authorize, capture, void, refund) and every
account routing had to pass over is an attempt built here, whoever records it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from paygrid.config import Settings
from paygrid.db.payments import AttemptRow
from paygrid.domain.payments import OPEN_ATTEMPT_STATUSES, AttemptOperation, AttemptStatus
from paygrid.ids import new_ordered_id


@dataclass(frozen=True, slots=True)
class AttemptError:
    """The code and message an attempt is closed with when no decline explains it."""

    code: str
    message: str


UNREACHABLE: Final = AttemptError("provider_unavailable", "The provider could not be reached.")


def new_attempt(
    payment_id: str,
    operation: AttemptOperation,
    *,
    connector: str,
    account_id: str | None,
    amount: int,
    now: datetime,
    payment_method_id: str | None = None,
    refund_id: str | None = None,
    status: AttemptStatus = AttemptStatus.PENDING,
    error: AttemptError | None = None,
) -> AttemptRow:
    """A new attempt: ``pending``, recorded before its provider is called, or already closed
    (``unreachable``: an account routing could not reach). Every column is given, so the row
    written is the row held and nothing has to be read back."""
    return AttemptRow(
        id=new_ordered_id("att"),  # a payment's attempts list in the order made
        payment_id=payment_id,
        operation=operation,
        connector=connector,
        connector_account_id=account_id,
        status=status,
        amount=amount,
        payment_method_id=payment_method_id,
        refund_id=refund_id,
        provider_reference=None,
        error_code=error.code if error else None,
        decline_code=None,
        error_message=error.message if error else None,
        latency_ms=None,
        created_at=now,
        completed_at=None if status in OPEN_ATTEMPT_STATUSES else now,
        sync_count=0,  # a new attempt has not been asked about yet
        next_sync_at=None,
    )


def next_sync_at(
    settings: Settings, status: AttemptStatus, sync_count: int, now: datetime
) -> datetime | None:
    """When status sync next asks the provider about an attempt: on the schedule while the
    outcome is unknown, and once the action window closes for ``requires_action``."""
    if status is AttemptStatus.UNKNOWN:
        delays = settings.sync_delays()
        return now + timedelta(seconds=delays[min(sync_count, len(delays) - 1)])
    if status is AttemptStatus.REQUIRES_ACTION:
        return now + timedelta(hours=settings.requires_action_expiry_hours)
    return None
