"""The subscription state machine, with Stripe's statuses.

There is one transition table, ``TRANSITIONS``: for each action, the statuses it may start
from and the status it leads to (``None``: the status stays what it was, for actions that
are allowed only in some statuses but change something else, such as a renewal or a
scheduled cancel). ``apply`` is the only function that decides a new status, and the SQL
layer guards every write with ``allowed_sources`` from the same table, as payments do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from paygrid.domain.errors import SubscriptionInvalidState


class SubscriptionStatus(StrEnum):
    INCOMPLETE = "incomplete"  # the first invoice is not paid yet (23 hours to pay it)
    INCOMPLETE_EXPIRED = "incomplete_expired"  # the first invoice was never paid
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"  # the latest renewal's payment failed; retries go on
    UNPAID = "unpaid"  # retries are exhausted; invoices are still made, not charged
    PAUSED = "paused"  # no invoices until resumed
    CANCELED = "canceled"


class SubscriptionAction(StrEnum):
    END_TRIAL = "end_trial"
    PAYMENT_SUCCEEDED = "payment_succeeded"  # the latest invoice was paid
    PAYMENT_FAILED = "payment_failed"  # a renewal's payment failed or needs authentication
    INITIAL_PAYMENT_FAILED = "initial_payment_failed"  # the first invoice's payment failed
    EXPIRE_INCOMPLETE = "expire_incomplete"  # 23 hours without paying the first invoice
    MARK_UNPAID = "mark_unpaid"  # the payment retries are exhausted
    PAUSE_EXHAUSTED = "pause_exhausted"  # retries exhausted with dunning's on_exhausted: pause
    RENEW = "renew"  # a new period begins and its invoice is made
    UPDATE_ITEMS = "update_items"
    PAUSE = "pause"
    RESUME = "resume"
    SCHEDULE_CANCEL = "schedule_cancel"  # cancel_at_period_end: true
    UNSCHEDULE_CANCEL = "unschedule_cancel"  # cancel_at_period_end: false
    PERIOD_END_CANCEL = "period_end_cancel"  # the period of a scheduled cancel ended
    CANCEL = "cancel"  # cancel now


@dataclass(frozen=True, slots=True)
class Transition:
    sources: frozenset[SubscriptionStatus]
    target: SubscriptionStatus | None  # None: the status is kept


S = SubscriptionStatus
A = SubscriptionAction

TERMINAL: Final = frozenset({S.INCOMPLETE_EXPIRED, S.CANCELED})
# Statuses of a subscription that has begun and not ended, however it stands with payments.
_STARTED: Final = frozenset({S.TRIALING, S.ACTIVE, S.PAST_DUE, S.UNPAID, S.PAUSED})
# Statuses in which periods roll over and invoices are made: not paused, not ended.
BILLING: Final = frozenset({S.ACTIVE, S.PAST_DUE, S.UNPAID})

TRANSITIONS: Final[dict[SubscriptionAction, Transition]] = {
    A.END_TRIAL: Transition(frozenset({S.TRIALING}), S.ACTIVE),
    A.PAYMENT_SUCCEEDED: Transition(
        frozenset({S.INCOMPLETE, S.ACTIVE, S.PAST_DUE, S.UNPAID}), S.ACTIVE
    ),
    A.PAYMENT_FAILED: Transition(frozenset({S.ACTIVE, S.PAST_DUE}), S.PAST_DUE),
    A.INITIAL_PAYMENT_FAILED: Transition(frozenset({S.INCOMPLETE}), S.INCOMPLETE),
    A.EXPIRE_INCOMPLETE: Transition(frozenset({S.INCOMPLETE}), S.INCOMPLETE_EXPIRED),
    A.MARK_UNPAID: Transition(frozenset({S.PAST_DUE}), S.UNPAID),
    A.PAUSE_EXHAUSTED: Transition(frozenset({S.ACTIVE, S.PAST_DUE}), S.PAUSED),
    A.RENEW: Transition(BILLING, None),
    A.UPDATE_ITEMS: Transition(frozenset({S.TRIALING}) | BILLING, None),
    A.PAUSE: Transition(frozenset({S.TRIALING, S.ACTIVE}), S.PAUSED),
    A.RESUME: Transition(frozenset({S.PAUSED}), S.ACTIVE),
    A.SCHEDULE_CANCEL: Transition(_STARTED, None),
    A.UNSCHEDULE_CANCEL: Transition(_STARTED, None),
    A.PERIOD_END_CANCEL: Transition(_STARTED, S.CANCELED),
    A.CANCEL: Transition(_STARTED | {S.INCOMPLETE}, S.CANCELED),
}

# Stripe's: an incomplete subscription whose first invoice is unpaid 23 hours after it was
# created becomes incomplete_expired.
INCOMPLETE_EXPIRY: Final = timedelta(hours=23)
# customer.subscription.trial_will_end is sent this long before a trial ends.
TRIAL_WILL_END_NOTICE: Final = timedelta(days=3)


def allowed_sources(action: SubscriptionAction) -> frozenset[SubscriptionStatus]:
    return TRANSITIONS[action].sources


def apply(status: SubscriptionStatus, action: SubscriptionAction) -> SubscriptionStatus:
    """Return the status after ``action``, or raise ``SubscriptionInvalidState``."""
    transition = TRANSITIONS[action]
    if status not in transition.sources:
        raise invalid_state(status, action)
    return status if transition.target is None else transition.target


def initial_status(*, trial: bool, paid: bool) -> SubscriptionStatus:
    """The status a new subscription starts in: ``trialing`` with a trial, ``active`` when
    its first invoice is paid (or owes nothing), ``incomplete`` otherwise."""
    if trial:
        return S.TRIALING
    return S.ACTIVE if paid else S.INCOMPLETE


def incomplete_expires_at(created: datetime) -> datetime:
    return created + INCOMPLETE_EXPIRY


def trial_will_end_at(trial_end: datetime) -> datetime:
    return trial_end - TRIAL_WILL_END_NOTICE


_VERBS: Final[dict[SubscriptionAction, str]] = {
    A.END_TRIAL: "end the trial of",
    A.PAYMENT_SUCCEEDED: "record a payment for",
    A.PAYMENT_FAILED: "record a failed renewal payment for",
    A.INITIAL_PAYMENT_FAILED: "record a failed first payment for",
    A.EXPIRE_INCOMPLETE: "expire",
    A.MARK_UNPAID: "end the payment retries of",
    A.PAUSE_EXHAUSTED: "pause after the payment retries of",
    A.RENEW: "renew",
    A.UPDATE_ITEMS: "update the items of",
    A.PAUSE: "pause",
    A.RESUME: "resume",
    A.SCHEDULE_CANCEL: "schedule the cancellation of",
    A.UNSCHEDULE_CANCEL: "unschedule the cancellation of",
    A.PERIOD_END_CANCEL: "apply the scheduled cancellation of",
    A.CANCEL: "cancel",
}


def invalid_state(
    status: SubscriptionStatus | str, action: SubscriptionAction
) -> SubscriptionInvalidState:
    return SubscriptionInvalidState(
        f"You cannot {_VERBS[action]} this subscription because it has a status of {status}.",
        current_status=str(status),
    )
