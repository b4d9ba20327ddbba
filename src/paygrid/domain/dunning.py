"""Dunning: how a failed invoice payment is classified, and when (and on which method) the
next attempt is made. Pure: the services in ``paygrid.services.billing.dunning`` load the
facts, ask these functions, and write what they decide.

**The classification table** (``CLASSIFICATION``), by our decline codes (what the
connectors return as ``code``) and the providers' more specific ``decline_code``s (looked up
first):

========================  ==========  ==================================================
code                      class       what dunning does
========================  ==========  ==================================================
stolen_card               hard        never retried on the same method
lost_card                 hard        never retried on the same method
pickup_card               hard        never retried on the same method
fraudulent                hard        never retried on the same method
invalid_account           hard        never retried on the same method
card_not_supported        hard        never retried on the same method
expired_card              hard        not retried until the customer's method changes
incorrect_cvc             hard        the card's data is wrong: needs the customer
invalid_cvc               hard        (Stripe's decline code for incorrect_cvc)
insufficient_funds        soft        retried on schedule
processing_error          soft        retried on schedule
try_again_later           soft        retried on schedule
issuer_not_available      soft        retried on schedule
do_not_honor              soft        retried on schedule
generic_decline           soft        retried on schedule
card_declined             soft        retried on schedule
authentication_required   action      retried only after the customer acts (or expiry)
authentication_failed     action      retried only after the customer acts (or expiry)
========================  ==========  ==================================================

A code no connector returns today (a provider's new ``decline_code``) falls back to its
``code``'s class, else ``soft``: retried on schedule, still bounded by the schedule and the
card network cap. ``tests/unit/test_dunning_classification.py`` fails for any code the
connectors can return that the table does not list.

**The schedule** counts days from the first failed attempt (on the customer's clock):
``[1, 3, 5, 7]`` retries 1, 3, 5 and 7 days after it, which is why the settings require the
days to increase strictly. Each step is scheduled from the failure before it, by the
difference of its day and the previous step's, so a retry made late moves the later ones
with it rather than bunching them. A retry skipped by the card network cap takes its step too. When
no step is left, the schedule is exhausted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from paygrid.domain.billing_settings import DunningSettings

# The job a customer's new default method enqueues (``services.method_updates``), on the
# worker's billing queue: it retries the customer's open failed invoices.
METHOD_UPDATED_JOB: Final = "dunning.method_updated"
METHOD_UPDATED_QUEUE: Final = "billing"


class DeclineClass(StrEnum):
    HARD = "hard"  # never retried on the same method
    SOFT = "soft"  # retried on schedule
    ACTION = "action"  # retried only after the customer acts (or the action expires)


H, SO, AC = DeclineClass.HARD, DeclineClass.SOFT, DeclineClass.ACTION

CLASSIFICATION: Final[dict[str, DeclineClass]] = {
    # hard
    "stolen_card": H,
    "lost_card": H,
    "pickup_card": H,
    "fraudulent": H,
    "invalid_account": H,
    "card_not_supported": H,
    "expired_card": H,
    "incorrect_cvc": H,
    "invalid_cvc": H,
    # soft
    "insufficient_funds": SO,
    "processing_error": SO,
    "try_again_later": SO,
    "issuer_not_available": SO,
    "do_not_honor": SO,
    "generic_decline": SO,
    "card_declined": SO,
    # action
    "authentication_required": AC,
    "authentication_failed": AC,
}


def classify(code: str | None, decline_code: str | None) -> DeclineClass:
    """The class of a failed payment: its ``decline_code`` (the more specific) first, then
    its ``code``; unknown codes are ``soft`` (see the module's docstring)."""
    for key in (decline_code, code):
        if key is not None and key in CLASSIFICATION:
            return CLASSIFICATION[key]
    return DeclineClass.SOFT


class DunningOutcome(StrEnum):
    """What a line of an invoice's dunning history records (``invoice_dunning_attempts``)."""

    FAILED = "failed"  # an attempt declined
    REQUIRES_ACTION = "requires_action"  # an attempt waits for the customer's authentication
    ACTION_EXPIRED = "action_expired"  # that wait ended without it
    SKIPPED = "skipped"  # a due retry not made


# A waiting payment whose cancellation the provider refused (it is down) is asked again
# ``CANCEL_RETRY_DELAY`` later, ``MAX_FAILED_CANCELS`` times; then only every
# ``CANCEL_RECHECK_DELAY`` (the status sync janitor cancels it meanwhile). A retry that
# finds it still unresolved is put off by ``UNRESOLVED_WAIT_DELAY``, its step kept.
CANCEL_RETRY_DELAY: Final = timedelta(hours=1)
MAX_FAILED_CANCELS: Final = 3
CANCEL_RECHECK_DELAY: Final = timedelta(hours=24)
UNRESOLVED_WAIT_DELAY: Final = timedelta(hours=6)


@dataclass(frozen=True, slots=True)
class DunningState:
    """Where an invoice stands in its schedule."""

    position: int = 0  # steps of the schedule used (retries made or skipped)
    blocked_methods: frozenset[str] = frozenset()  # hard-declined on this invoice
    pinned_method: str | None = None  # a fallback method the next retries charge


@dataclass(frozen=True, slots=True)
class Decision:
    """What happens after a failed (or skipped, or expired) attempt."""

    state: DunningState
    next_attempt_at: datetime | None  # None: no retry is scheduled
    action_expires_at: datetime | None = None  # waiting for the customer until then
    exhausted: bool = False  # the schedule is over: apply ``on_exhausted``


def _step(settings: DunningSettings, state: DunningState, after: datetime) -> Decision:
    """The schedule's next step after a failure at ``after``, or its end."""
    days = settings.retry_schedule_days
    if state.position >= len(days):
        return Decision(state, None, exhausted=True)
    previous = days[state.position - 1] if state.position else 0
    due = after + timedelta(days=days[state.position] - previous)
    return Decision(replace(state, position=state.position + 1), due)


def after_failure(
    settings: DunningSettings,
    state: DunningState,
    *,
    failed_at: datetime,
    decline: DeclineClass,
    method: str | None,
    other_methods: Sequence[str],
) -> Decision:
    """The decision after a failed attempt on ``method`` at ``failed_at``.
    ``other_methods`` are the customer's other saved methods, newest first."""
    if decline is DeclineClass.ACTION:
        expires = failed_at + timedelta(hours=settings.action_expiry_hours)
        return Decision(state, None, action_expires_at=expires)
    if decline is DeclineClass.SOFT or not settings.stop_on_hard_decline or method is None:
        return _step(settings, state, failed_at)
    blocked = state.blocked_methods | {method}
    state = replace(state, blocked_methods=blocked, pinned_method=None)
    fallback = next((m for m in other_methods if m not in blocked), None)
    if not settings.fallback_to_other_methods or fallback is None:
        return Decision(state, None, exhausted=True)
    # The next method is tried at once, as the schedule's next step.
    decided = _step(settings, replace(state, pinned_method=fallback), failed_at)
    if decided.next_attempt_at is None:
        return decided
    return replace(decided, next_attempt_at=failed_at)


def after_action_expired(
    settings: DunningSettings, state: DunningState, *, failed_at: datetime, expired_at: datetime
) -> Decision:
    """The customer did not authenticate in time: the attempt counts as failed (class
    ``action``) and the invoice returns to its schedule, no earlier than the expiry."""
    decided = _step(settings, state, failed_at)
    if decided.next_attempt_at is None:
        return decided
    return replace(decided, next_attempt_at=max(decided.next_attempt_at, expired_at))


def after_unresolved_wait(state: DunningState, *, at: datetime) -> Decision:
    """A due retry that could not start because an earlier payment still waits for the
    customer and its provider could not cancel it: no step of the schedule is used; the
    retry comes again ``UNRESOLVED_WAIT_DELAY`` later (the payment is asked again then)."""
    return Decision(state, at + UNRESOLVED_WAIT_DELAY)


def after_skip(settings: DunningSettings, state: DunningState, *, at: datetime) -> Decision:
    """A due retry that was not made (the card network cap, no method to charge): the
    schedule moves on to its next step from ``at``."""
    return _step(settings, state, at)


def within_cap(settings: DunningSettings, attempts_in_window: int) -> bool:
    """Whether one more attempt on a method keeps it within the card networks' cap, given
    the attempts made with it in the last ``attempt_window_days``."""
    return attempts_in_window < settings.max_attempts_per_method


def cap_window(settings: DunningSettings) -> timedelta:
    return timedelta(days=settings.attempt_window_days)


def may_charge(settings: DunningSettings, state: DunningState, method: str) -> bool:
    """Whether ``method`` may be charged for this invoice (not hard-declined on it while
    ``stop_on_hard_decline`` holds)."""
    return not (settings.stop_on_hard_decline and method in state.blocked_methods)
