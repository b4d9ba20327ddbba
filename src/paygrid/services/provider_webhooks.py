"""Inbound provider webhooks: verify the signature over the raw bytes, keep the event in an
inbox deduplicated by the provider's event id, and apply it through the payment state
machine. Applying only writes to our database (no provider call), so the provider gets its
2xx quickly; an event about a payment we do not know yet is kept and retried by a job.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final

import structlog

from paygrid.connectors.base import (
    AttemptResult,
    InvalidSignature,
    OutcomeUnknown,
    ProviderEvent,
    ProviderUnreachable,
)
from paygrid.db import connector_accounts as accounts_db
from paygrid.db import jobs as jobs_db
from paygrid.db import payments as payments_db
from paygrid.db import provider_events as inbox_db
from paygrid.db import refunds as refunds_db
from paygrid.db.payments import AttemptRow, PaymentRow
from paygrid.dependencies import Deps
from paygrid.domain.errors import CardError, InvalidRequest, ResourceMissing
from paygrid.domain.payments import AttemptOutcome
from paygrid.domain.provider_events import ProviderEventStatus
from paygrid.ids import new_id
from paygrid.services import refunds
from paygrid.services.payments.late_charges import return_late_charge
from paygrid.services.payments.outcomes import apply_attempt_result

log = structlog.get_logger("paygrid.provider_webhooks")

APPLY = "provider_webhooks.apply"
# How long after each miss an event about an unknown payment or refund is tried again.
UNMATCHED_RETRY_SECONDS: Final = (5, 30, 120, 600, 3600, 21600)
# Attempts closed without payment whose page may still have been paid at the provider.
CLOSED_UNPAID: Final = frozenset({"action_expired", "redirect_lost"})
# How long applying an event may spend verifying it with the provider.
VERIFY_BUDGET_SECONDS: Final = 0.5


class SignatureInvalid(InvalidRequest):
    default_code = "signature_invalid"


async def receive(
    deps: Deps, account_id: str, raw_body: bytes, headers: Mapping[str, str]
) -> dict[str, bool | str]:
    """Handle one webhook request; returns the small acknowledgement body."""
    account = await accounts_db.get_account_unscoped(deps.pool, account_id)
    if account is None:
        raise ResourceMissing(f"No such connector account: '{account_id}'", param="id")
    connector = deps.connectors.from_row(account)
    try:
        event = connector.parse_webhook(raw_body, headers, deps.clock.now().timestamp())
    except InvalidSignature as error:
        log.warning(
            "provider_webhook.bad_signature",
            connector_account_id=account_id,
            provider=account.provider,
            reason=str(error),
            body_bytes=len(raw_body),
        )
        raise SignatureInvalid(
            "The webhook signature did not verify; nothing was applied.", param="signature"
        ) from None
    row = await inbox_db.insert_event(
        deps.pool,
        event_id=new_id("pwe"),
        connector_account_id=account_id,
        provider_event_id=event.event_id,
        event_type=event.type,
        body=raw_body,
        headers=_signature_headers(deps, account.provider, headers),
    )
    if row is None:
        log.info("provider_webhook.duplicate", provider_event_id=event.event_id)
        return {"received": True, "duplicate": True}
    status = await _apply_or_schedule(deps, row.id, account_id, event, attempt=1)
    return {"received": True, "status": status.value}


def _signature_headers(deps: Deps, provider: str, headers: Mapping[str, str]) -> dict[str, str]:
    """The headers kept with the event, to verify it again when a retry parses it."""
    names = deps.connectors.providers.facts(provider).signature_headers
    return {k: v for k, v in headers.items() if k.lower() in names}


async def apply_job(payload: dict[str, Any], deps: Deps) -> None:
    """The retry of an event that did not match anything yet (job ``provider_webhooks.apply``)."""
    row = await inbox_db.get_event(deps.pool, payload["event"])
    if row is None or row.status.is_final:
        return
    account = await accounts_db.get_account_unscoped(deps.pool, row.connector_account_id)
    assert account is not None
    connector = deps.connectors.from_row(account)
    # Parse the stored body with its stored signature, as of the time it was received (so
    # Stripe's timestamp tolerance still holds).
    event = connector.parse_webhook(row.body, row.headers, row.received_at.timestamp())
    await _apply_or_schedule(
        deps, row.id, row.connector_account_id, event, attempt=int(payload["attempt"])
    )


async def _apply_or_schedule(
    deps: Deps, inbox_id: str, account_id: str, event: ProviderEvent, *, attempt: int
) -> ProviderEventStatus:
    unmatched = ProviderEventStatus.UNMATCHED
    detail: str | None
    try:
        status = await apply(deps, account_id, event)
    except Exception as error:  # kept for the retry job; never a 5xx to the provider
        log.exception("provider_webhook.apply_failed", inbox_id=inbox_id)
        status, detail = unmatched, f"{type(error).__name__}: {error}"
    else:
        detail = None if status is not unmatched else "no payment or refund matches yet"
    await inbox_db.mark(deps.pool, inbox_id, status, detail, now=deps.clock.now())
    if status is unmatched and attempt <= len(UNMATCHED_RETRY_SECONDS):
        delay = UNMATCHED_RETRY_SECONDS[attempt - 1]
        await jobs_db.enqueue(
            deps.pool,
            APPLY,
            {"event": inbox_id, "attempt": attempt + 1},
            run_at=deps.clock.now() + timedelta(seconds=delay),
            # One job per retry number: the running job (this one) is still live meanwhile.
            unique_key=f"{APPLY}:{inbox_id}:{attempt + 1}",
        )
    return status


async def _verified(
    deps: Deps, account_id: str, attempt: AttemptRow, announced: AttemptResult
) -> AttemptResult:
    """Verify what the event announces with the provider's API (Paystack's advice: verify
    the transaction on webhook), within a short budget so the provider still gets its answer
    in time. If the provider cannot say right now, the signed event itself is applied."""
    connector = await deps.connectors.connector_for(deps.pool, account_id)
    try:
        async with asyncio.timeout(VERIFY_BUDGET_SECONDS):
            verified = await connector.retrieve(attempt.id, attempt.provider_reference)
    except (TimeoutError, OutcomeUnknown, ProviderUnreachable):
        return announced
    return announced if verified.outcome is AttemptOutcome.UNKNOWN else verified


async def apply(deps: Deps, account_id: str, event: ProviderEvent) -> ProviderEventStatus:
    """Apply one parsed event; returns applied, ignored or unmatched. Idempotent and safe out
    of order: an answer for an attempt that is already final changes nothing."""
    if event.attempt_result is not None:
        attempt = await inbox_db.find_attempt(
            deps.pool, account_id, event.attempt_id, event.provider_reference
        )
        if attempt is None:
            return ProviderEventStatus.UNMATCHED
        await _apply_to_attempt(deps, account_id, attempt, event.attempt_result)
        return ProviderEventStatus.APPLIED
    if event.refund_result is not None and event.refund_reference is not None:
        refund = await refunds_db.find_by_provider_reference(
            deps.pool, account_id, event.refund_reference
        )
        if refund is None:
            return ProviderEventStatus.UNMATCHED
        await refunds.settle_from_provider(deps, refund, event.refund_result)
        return ProviderEventStatus.APPLIED
    return ProviderEventStatus.IGNORED


async def _apply_to_attempt(
    deps: Deps, account_id: str, attempt: AttemptRow, announced: AttemptResult
) -> None:
    if not attempt.is_open:
        if attempt.error_code in CLOSED_UNPAID and announced.outcome is AttemptOutcome.CAPTURED:
            # Paid on a page paygrid had already given up on: give the money back.
            await return_late_charge(deps, await _payment_of(deps, attempt), attempt, announced)
        return  # already final: a late or repeated event changes nothing
    payment = await _payment_of(deps, attempt)
    attempts = await payments_db.attempts_of(deps.pool, [payment.id])
    earlier = [row for row in attempts if row.id != attempt.id]
    result = await _verified(deps, account_id, attempt, announced)
    with contextlib.suppress(CardError):  # a decline is recorded on the payment
        await apply_attempt_result(deps, payment, attempt, result, None, earlier)


async def _payment_of(deps: Deps, attempt: AttemptRow) -> PaymentRow:
    payment = await payments_db.payment_by_id(deps.pool, attempt.payment_id)
    assert payment is not None  # attempts are never without their payment
    return payment
