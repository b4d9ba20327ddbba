"""Run an authorization attempt at a connector and apply what the provider answered.

The attempt row is written (pending) before the call and the provider deduplicates on the
attempt id, so re-driving an attempt after a crash never charges twice.
"""

from __future__ import annotations

import time

import asyncpg

from paygrid.connectors.base import (
    AttemptResult,
    AuthorizeRequest,
    OutcomeUnknown,
    ProviderUnreachable,
)
from paygrid.db import payment_methods as pm_db
from paygrid.db import payments as payments_db
from paygrid.db.executor import Connection
from paygrid.domain import payments as domain
from paygrid.domain.errors import CardError, ProviderUnavailable
from paygrid.domain.events import EventType, payment_event_for
from paygrid.domain.payments import AttemptOutcome, PaymentAction, PaymentStatus
from paygrid.schemas.payments import Payment
from paygrid.services.context import Deps
from paygrid.services.snapshots import emit_payment, payment_view


def return_url_for(deps: Deps, payment_id: str) -> str:
    """paygrid's own landing route for customers coming back from a provider redirect."""
    return f"{deps.settings.base_url()}/payments/{payment_id}/return"


async def run_authorization(
    deps: Deps,
    payment: asyncpg.Record,
    attempt: asyncpg.Record,
    method: asyncpg.Record | None = None,
) -> Payment:
    """Call the connector for ``attempt`` (with its payment method, loaded if not given) and
    record the outcome."""
    connector = deps.connectors.by_name(attempt["connector"])
    if method is None:
        method = await pm_db.get_payment_method(
            deps.pool, payment["merchant_id"], payment["livemode"], attempt["payment_method_id"]
        )
    assert method is not None  # attempts reference an existing method by foreign key
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
        await _release(deps, payment, attempt["id"], _elapsed_ms(started))
        raise ProviderUnavailable(
            "The payment provider could not be reached; nothing was charged. Retry the confirm.",
            payment_id=payment["id"],
        ) from None
    except OutcomeUnknown:
        result = AttemptResult(AttemptOutcome.UNKNOWN, None)
    return await apply_attempt_result(deps, payment, attempt["id"], result, _elapsed_ms(started))


async def apply_attempt_result(
    deps: Deps,
    payment: asyncpg.Record,
    attempt_id: str,
    result: AttemptResult,
    latency_ms: int | None,
) -> Payment:
    """Record a provider answer on the attempt and move the payment through the state
    machine. Idempotent and safe out of order: an answer for an attempt that is already
    final, or a transition the payment no longer allows, changes nothing."""
    payment_id = payment["id"]
    action = domain.action_for_outcome(result.outcome)
    decline = result.decline
    async with deps.pool.acquire() as conn, conn.transaction():
        attempt = await payments_db.finish_attempt(
            conn,
            attempt_id,
            status=result.outcome.value,
            provider_reference=result.provider_reference,
            latency_ms=latency_ms,
            error_code=decline.code if decline else None,
            decline_code=decline.decline_code if decline else None,
            error_message=decline.message if decline else None,
        )
        if attempt is None:  # someone already recorded this answer
            return await _current_view(conn, payment_id)
        if action is None:
            return await emit_payment(conn, payment, EventType.PAYMENT_PROCESSING)
        updated = await payments_db.transition(
            conn,
            payment_id,
            sources=domain.allowed_sources(action),
            target=domain.TRANSITIONS[action].target,
            changes=_changes_for(action, payment, result),
        )
        if updated is None:
            return await _current_view(conn, payment_id)
        view = await emit_payment(
            conn,
            updated,
            payment_event_for(
                PaymentStatus(updated["status"]),
                attempt_failed=action is PaymentAction.FAIL_ATTEMPT,
            ),
        )
    if decline is not None:
        raise CardError(
            decline.message,
            code=decline.code,
            decline_code=decline.decline_code,
            payment_id=payment_id,
        )
    return view


async def _current_view(conn: Connection, payment_id: str) -> Payment:
    payment = await payments_db.get_payment_unscoped(conn, payment_id)
    assert payment is not None
    return await payment_view(conn, payment)


def _changes_for(
    action: PaymentAction, payment: asyncpg.Record, result: AttemptResult
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
    else:
        changes["last_payment_error"] = None
    return changes


async def _release(deps: Deps, payment: asyncpg.Record, attempt_id: str, latency_ms: int) -> None:
    """The call never reached the provider: close the attempt, let the payment be confirmed
    again."""
    async with deps.pool.acquire() as conn, conn.transaction():
        await payments_db.finish_attempt(
            conn,
            attempt_id,
            status="unreachable",
            provider_reference=None,
            latency_ms=latency_ms,
            error_code="provider_unavailable",
            error_message="The provider could not be reached.",
        )
        await payments_db.transition(
            conn,
            payment["id"],
            sources=domain.allowed_sources(PaymentAction.RELEASE_ATTEMPT),
            target=PaymentStatus.REQUIRES_CONFIRMATION,
        )


async def sync_authorization(deps: Deps, payment: asyncpg.Record) -> Payment:
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
    try:
        if result.outcome is AttemptOutcome.UNKNOWN:
            return await payment_view(deps.pool, payment)
        return await apply_attempt_result(deps, payment, attempt["id"], result, None)
    except CardError:
        refreshed = await payments_db.get_payment_unscoped(deps.pool, payment["id"])
        assert refreshed is not None
        return await payment_view(deps.pool, refreshed)


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
