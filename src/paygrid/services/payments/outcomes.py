"""Record what a provider answered for an authorize attempt: the attempt's outcome, the
payment's transition and its event, in one statement."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Final

from paygrid.connectors.base import (
    AttemptResult,
    ConnectorError,
    Decline,
    InvalidCredentials,
    TokenizedCard,
)
from paygrid.db import events as events_db
from paygrid.db import payment_methods as pm_db
from paygrid.db import payments as payments_db
from paygrid.db.engine import JsonText
from paygrid.db.payments import AttemptRow, PaymentChanges, PaymentRow, Transition
from paygrid.dependencies import Deps
from paygrid.domain import payments as domain
from paygrid.domain.errors import CardError
from paygrid.domain.events import EventType, payment_event_for
from paygrid.domain.payments import (
    OPEN_ATTEMPT_STATUSES,
    AttemptOutcome,
    AttemptStatus,
    PaymentAction,
    attempt_status_for,
)
from paygrid.schemas.payments import Payment
from paygrid.services.idempotency_keys import IdempotencyClaim
from paygrid.services.payment_method_sources import new_method_row
from paygrid.services.payments.attempts import AttemptError, next_sync_at
from paygrid.services.payments.future_usage import save_if_asked
from paygrid.services.payments.late_charges import return_late_charge
from paygrid.services.payments.views import current_view, tenant_of

NOT_SENT: Final = AttemptError(
    "attempt_not_sent",
    "The request never reached the provider (paygrid stopped before sending it); nothing "
    "was charged. Confirm the payment again with a payment method.",
)


def rejection_of(error: ConnectorError) -> AttemptError:
    """The attempt's error for a request the provider refused unprocessed."""
    if isinstance(error, InvalidCredentials):
        return AttemptError(
            "provider_credentials_rejected", "The provider rejected the account's API key."
        )
    return AttemptError("provider_rejected", str(error) or "The provider refused the request.")


async def apply_attempt_result(
    deps: Deps,
    payment: PaymentRow,
    attempt: AttemptRow,
    result: AttemptResult,
    latency_ms: int | None,
    earlier: Sequence[AttemptRow],
    *,
    claim: IdempotencyClaim | None = None,
) -> Payment:
    """Record a provider answer on the attempt and move the payment through the state
    machine, with its event, in one statement. Idempotent and safe out of order: an answer
    for an attempt that is already final, or a transition the payment no longer allows,
    changes nothing."""
    status = attempt_status_for(result.outcome)
    action = domain.action_for_outcome(result.outcome)
    # The recorded view is the answer unless a card error or a saved method follows.
    answers = result.decline is None and (
        result.saved_method is None or payment.payment_method_id is not None
    )
    view, came_late = await record(
        deps,
        payment,
        attempt,
        earlier,
        result,
        latency_ms,
        status=status,
        action=action,
        claim=claim if answers else None,
    )
    if view is None:  # someone else recorded this answer, or the payment moved on
        if came_late and result.outcome in (AttemptOutcome.CAPTURED, AttemptOutcome.AUTHORIZED):
            await return_late_charge(deps, payment, attempt, result)
        return await current_view(deps, payment.id)
    if result.saved_method is not None and payment.payment_method_id is None:
        view = await _save_method(deps, payment, attempt, result.saved_method, result.channel)
    if payment.setup_future_usage is not None:
        await save_if_asked(deps, payment, view)
    if result.decline is not None:
        raise CardError(
            result.decline.message,
            code=result.decline.code,
            decline_code=result.decline.decline_code,
            payment_id=payment.id,
        )
    return view


async def record(
    deps: Deps,
    payment: PaymentRow,
    attempt: AttemptRow,
    earlier: Sequence[AttemptRow],
    result: AttemptResult,
    latency_ms: int | None,
    *,
    status: AttemptStatus,
    action: PaymentAction | None,
    error: AttemptError | None = None,
    claim: IdempotencyClaim | None = None,
) -> tuple[Payment | None, bool]:
    """Write the attempt's outcome, the payment's transition and the event together; the
    snapshot is computed from the rows in hand. Returns the new view (``None`` when the
    guards refused) and whether this call recorded an answer its payment had moved past.
    With ``claim`` (held by this request) the view is the response, stored with them."""
    now = deps.clock.now()
    answered = _answered(deps, attempt, result, latency_ms, status, error, now)
    transition, after, event_type = _move(payment, action, result, error, now)
    view = Payment.from_row(after, [*earlier, answered])
    body = view.model_dump_json()  # serialised once: the event's payload and the response
    event = events_db.event_row(
        merchant_id=payment.merchant_id,
        livemode=payment.livemode,
        event_type=event_type.value,
        object_id=payment.id,
        snapshot=JsonText(body),
        created_at=now,
    )
    respond = claim is not None and claim.ours
    attempt_updated, payment_updated = await payments_db.record_attempt_outcome(
        deps.pool,
        attempt=answered,
        transition=transition,
        event=event,
        completion=(claim.request, body.encode()) if claim is not None and respond else None,
    )
    # This call recorded the provider's answer, but the payment had already moved on (e.g. a
    # hosted page paid after the payment was canceled): money may need giving back.
    came_late = attempt_updated and transition is not None and not payment_updated
    if not attempt_updated or (transition is not None and not payment_updated):
        return None, came_late
    if claim is not None and respond:
        claim.completed_body = body.encode()
    return view, False


def _move(
    payment: PaymentRow,
    action: PaymentAction | None,
    result: AttemptResult,
    error: AttemptError | None,
    now: datetime,
) -> tuple[Transition | None, PaymentRow, EventType]:
    """The payment's transition for ``action`` (none without one), the payment after it,
    and the event that tells of it."""
    if action is None:
        return None, payment, EventType.PAYMENT_PROCESSING
    target = domain.TRANSITIONS[action].target
    changes = _changes_for(action, payment, result, error)
    transition = Transition(domain.allowed_sources(action), target, changes, now)
    event_type = (
        EventType.PAYMENT_UPDATED
        if action is PaymentAction.RELEASE_ATTEMPT
        else payment_event_for(target, attempt_failed=action is PaymentAction.FAIL_ATTEMPT)
    )
    return transition, replace(payment, status=target, updated_at=now, **changes), event_type


def _answered(
    deps: Deps,
    attempt: AttemptRow,
    result: AttemptResult,
    latency_ms: int | None,
    status: AttemptStatus,
    error: AttemptError | None,
    now: datetime,
) -> AttemptRow:
    """The attempt as the answer leaves it."""
    decline = result.decline
    return replace(
        attempt,
        status=status,
        provider_reference=result.provider_reference or attempt.provider_reference,
        latency_ms=latency_ms if latency_ms is not None else attempt.latency_ms,
        error_code=decline.code if decline else (error.code if error else None),
        decline_code=decline.decline_code if decline else None,
        error_message=decline.message if decline else (error.message if error else None),
        completed_at=None if status in OPEN_ATTEMPT_STATUSES else now,
        next_sync_at=next_sync_at(deps.settings, status, attempt.sync_count, now),
    )


def _changes_for(
    action: PaymentAction,
    payment: PaymentRow,
    result: AttemptResult,
    error: AttemptError | None = None,
) -> PaymentChanges:
    changes: PaymentChanges = {"next_action": None}
    amounts = domain.amounts_after(action, payment.amount)
    if amounts is not None:
        changes["amount_capturable"] = amounts.amount_capturable
        changes["amount_received"] = amounts.amount_received
    if (
        action is PaymentAction.REQUIRE_ACTION
        and result.redirect_url is None
        and payment.next_action
    ):
        changes["next_action"] = payment.next_action  # a re-driven attempt keeps its URL
    elif action is PaymentAction.REQUIRE_ACTION:
        changes["next_action"] = {
            "type": "redirect_to_url",
            "redirect_to_url": {"url": result.redirect_url, "return_url": payment.return_url},
        }
    if action is PaymentAction.REQUIRE_ACTION and result.decline is not None:
        # An off-session charge the card wants authenticated: it waits for the customer.
        changes["last_payment_error"] = _card_error(result.decline)
    elif action is PaymentAction.FAIL_ATTEMPT and result.decline is not None:
        changes["payment_method_id"] = None  # like Stripe: a failed method is detached
        changes["last_payment_error"] = _card_error(result.decline)
    elif action is PaymentAction.FAIL_ATTEMPT and error is not None:
        changes["payment_method_id"] = None
        changes["last_payment_error"] = {
            "type": "api_error",
            "code": error.code,
            "message": error.message,
        }
    elif action is not PaymentAction.RELEASE_ATTEMPT:
        changes["last_payment_error"] = None
    return changes


def _card_error(decline: Decline) -> dict[str, Any]:
    return {
        "type": "card_error",
        "code": decline.code,
        "decline_code": decline.decline_code,
        "message": decline.message,
    }


async def _save_method(
    deps: Deps,
    payment: PaymentRow,
    attempt: AttemptRow,
    token: TokenizedCard,
    channel: str | None,
) -> Payment:
    """Keep the reusable authorization a provider returned (Paystack's authorization_code)
    as a payment method of the payment's customer, for recurring charges."""
    row = new_method_row(
        tenant_of(payment),
        token,
        attempt.connector,
        deps.clock.now(),
        attempt.connector_account_id,
        # With setup_future_usage, saving attaches it (with its event and mandate) next.
        payment.customer_id if payment.setup_future_usage is None else None,
        channel=channel,
    )
    async with deps.pool.acquire() as conn, conn.transaction():
        await pm_db.insert_row(conn, row, payment_id=payment.id)
        await payments_db.set_payment_method(conn, payment.id, row.id)
    return await current_view(deps, payment.id)
