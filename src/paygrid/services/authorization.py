"""Run an authorization attempt at a connector and apply what the provider answered.

The attempt row is written (pending) before the call and the provider deduplicates on the
attempt id, so re-driving an attempt after a crash never charges twice.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from paygrid.connectors.base import (
    AttemptResult,
    AuthorizeRequest,
    OutcomeUnknown,
    ProviderUnreachable,
)
from paygrid.db import events as events_db
from paygrid.db import payment_methods as pm_db
from paygrid.db import payments as payments_db
from paygrid.domain import payments as domain
from paygrid.domain.errors import CardError, ProviderUnavailable
from paygrid.domain.events import EventType, payment_event_for
from paygrid.domain.payments import AttemptOutcome, PaymentAction
from paygrid.schemas.common import RowLike
from paygrid.schemas.payments import Payment
from paygrid.services.context import Deps
from paygrid.services.snapshots import payment_view


def return_url_for(deps: Deps, payment_id: str) -> str:
    """paygrid's own landing route for customers coming back from a provider redirect."""
    return f"{deps.settings.base_url()}/payments/{payment_id}/return"


async def run_authorization(
    deps: Deps,
    payment: RowLike,
    attempt: RowLike,
    method: RowLike | None = None,
    earlier_attempts: Sequence[RowLike] | None = None,
) -> Payment:
    """Call the connector for ``attempt`` and record the outcome. The payment method and the
    payment's earlier attempts are loaded when the caller does not hold them."""
    connector = deps.connectors.by_name(attempt["connector"])
    if method is None:
        method = await pm_db.get_payment_method(
            deps.pool, payment["merchant_id"], payment["livemode"], attempt["payment_method_id"]
        )
    assert method is not None  # attempts reference an existing method by foreign key
    if earlier_attempts is None:
        earlier_attempts = await _earlier_attempts(deps, payment["id"], attempt["id"])
    request = AuthorizeRequest(
        idempotency_key=attempt["id"],
        amount=payment["amount"],
        currency=payment["currency"],
        capture=payment["capture_method"] == "automatic",
        payment_method_token=method["connector_reference"],
        return_url=return_url_for(deps, payment["id"]),
    )
    started = time.perf_counter()
    try:
        result = await connector.authorize(request)
    except ProviderUnreachable:
        unreachable = AttemptResult(AttemptOutcome.UNKNOWN, None)
        await _record(
            deps,
            payment,
            attempt,
            earlier_attempts,
            unreachable,
            _elapsed_ms(started),
            attempt_status="unreachable",
            action=PaymentAction.RELEASE_ATTEMPT,
        )
        raise ProviderUnavailable(
            "The payment provider could not be reached; nothing was charged. Retry the confirm.",
            payment_id=payment["id"],
        ) from None
    except OutcomeUnknown:
        result = AttemptResult(AttemptOutcome.UNKNOWN, None)
    return await apply_attempt_result(
        deps, payment, attempt, result, _elapsed_ms(started), earlier_attempts
    )


async def apply_attempt_result(
    deps: Deps,
    payment: RowLike,
    attempt: RowLike,
    result: AttemptResult,
    latency_ms: int | None,
    earlier_attempts: Sequence[RowLike],
) -> Payment:
    """Record a provider answer on the attempt and move the payment through the state
    machine, with its event, in one statement. Idempotent and safe out of order: an answer
    for an attempt that is already final, or a transition the payment no longer allows,
    changes nothing."""
    action = domain.action_for_outcome(result.outcome)
    view = await _record(
        deps,
        payment,
        attempt,
        earlier_attempts,
        result,
        latency_ms,
        attempt_status=result.outcome.value,
        action=action,
    )
    decline = result.decline
    if view is None:  # someone else recorded this answer, or the payment moved on
        return await _current_view(deps, payment["id"])
    if decline is not None:
        raise CardError(
            decline.message,
            code=decline.code,
            decline_code=decline.decline_code,
            payment_id=payment["id"],
        )
    return view


async def _record(
    deps: Deps,
    payment: RowLike,
    attempt: RowLike,
    earlier_attempts: Sequence[RowLike],
    result: AttemptResult,
    latency_ms: int | None,
    *,
    attempt_status: str,
    action: PaymentAction | None,
) -> Payment | None:
    """Write the attempt's outcome, the payment's transition and the event together; the
    snapshot is computed from the rows in hand. ``None`` when the guards refused."""
    now = datetime.now(UTC)
    decline = result.decline
    attempt_changes: dict[str, Any] = {
        "status": attempt_status,
        "provider_reference": result.provider_reference or attempt["provider_reference"],
        "latency_ms": latency_ms if latency_ms is not None else attempt["latency_ms"],
        "error_code": decline.code if decline else _ERROR_CODES.get(attempt_status),
        "decline_code": decline.decline_code if decline else None,
        "error_message": decline.message if decline else _ERROR_MESSAGES.get(attempt_status),
        "completed_at": None if attempt_status in OPEN_ATTEMPT_STATUSES else now,
    }
    transition = None
    after = dict(_columns(payment))
    if action is None:
        event_type = EventType.PAYMENT_PROCESSING
    else:
        target = domain.TRANSITIONS[action].target
        changes = {
            "status": target.value,
            "updated_at": now,
            **_changes_for(action, payment, result),
        }
        transition = (domain.allowed_sources(action), changes)
        after.update(changes)
        event_type = (
            EventType.PAYMENT_UPDATED
            if action is PaymentAction.RELEASE_ATTEMPT
            else payment_event_for(target, attempt_failed=action is PaymentAction.FAIL_ATTEMPT)
        )
    attempts = [*earlier_attempts, {**_columns(attempt), **attempt_changes}]
    view = Payment.from_row(after, attempts)
    event = events_db.event_row(
        merchant_id=payment["merchant_id"],
        livemode=payment["livemode"],
        event_type=event_type.value,
        object_id=payment["id"],
        snapshot=view.model_dump(mode="json"),
        created_at=now,
    )
    attempt_updated, payment_updated = await payments_db.record_attempt_outcome(
        deps.pool,
        attempt_id=attempt["id"],
        attempt_changes=attempt_changes,
        payment_id=payment["id"],
        transition=transition,
        event=event,
    )
    if not attempt_updated or (transition is not None and not payment_updated):
        return None
    return view


OPEN_ATTEMPT_STATUSES = frozenset({"pending", "requires_action", "unknown"})
_ERROR_CODES = {"unreachable": "provider_unavailable"}
_ERROR_MESSAGES = {"unreachable": "The provider could not be reached."}


def _columns(row: RowLike) -> dict[str, Any]:
    """A row as a plain dict (asyncpg Records and dicts alike)."""
    return dict(row.items())


async def _earlier_attempts(deps: Deps, payment_id: str, attempt_id: str) -> list[RowLike]:
    rows = await payments_db.list_attempts(deps.pool, [payment_id])
    return [row for row in rows if row["id"] != attempt_id]


async def _current_view(deps: Deps, payment_id: str) -> Payment:
    payment = await payments_db.get_payment_unscoped(deps.pool, payment_id)
    assert payment is not None
    return await payment_view(deps.pool, payment)


def _changes_for(
    action: PaymentAction, payment: RowLike, result: AttemptResult
) -> dict[str, object]:
    changes: dict[str, object] = {"next_action": None}
    amounts = domain.amounts_after(action, payment["amount"])
    if amounts is not None:
        changes["amount_capturable"] = amounts.amount_capturable
        changes["amount_received"] = amounts.amount_received
    if action is PaymentAction.REQUIRE_ACTION:
        changes["next_action"] = {
            "type": "redirect_to_url",
            "redirect_to_url": {"url": result.redirect_url, "return_url": payment["return_url"]},
        }
    elif action is PaymentAction.FAIL_ATTEMPT and result.decline is not None:
        changes["payment_method_id"] = None  # like Stripe: a failed method is detached
        changes["last_payment_error"] = {
            "type": "card_error",
            "code": result.decline.code,
            "decline_code": result.decline.decline_code,
            "message": result.decline.message,
        }
    elif action is not PaymentAction.RELEASE_ATTEMPT:
        changes["last_payment_error"] = None
    return changes


async def sync_authorization(deps: Deps, payment: RowLike) -> Payment:
    """Ask the provider for the outcome of the payment's open authorization (after a
    redirect, or when the outcome was unknown) and apply it."""
    attempt = await payments_db.open_attempt(deps.pool, payment["id"], "authorize")
    if attempt is None or attempt["provider_reference"] is None:
        return await payment_view(deps.pool, payment)
    connector = deps.connectors.by_name(attempt["connector"])
    try:
        result = await connector.retrieve(attempt["provider_reference"])
    except (OutcomeUnknown, ProviderUnreachable):
        return await payment_view(deps.pool, payment)
    if result.outcome is AttemptOutcome.UNKNOWN:
        return await payment_view(deps.pool, payment)
    earlier = await _earlier_attempts(deps, payment["id"], attempt["id"])
    try:
        return await apply_attempt_result(deps, payment, attempt, result, None, earlier)
    except CardError:
        refreshed = await payments_db.get_payment_unscoped(deps.pool, payment["id"])
        assert refreshed is not None
        return await payment_view(deps.pool, refreshed)


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
