"""Run an authorization attempt at a connector and apply what the provider answered.

The attempt row is written (pending) before the call and the provider deduplicates on the
attempt id, so re-driving an attempt after a crash never charges twice.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import asyncpg
import structlog

from paygrid.connectors.base import (
    AttemptResult,
    AuthorizeRequest,
    ConnectorError,
    InvalidCredentials,
    NoSuchCharge,
    OutcomeUnknown,
    ProviderUnreachable,
    TokenizedCard,
)
from paygrid.db import customers as customers_db
from paygrid.db import events as events_db
from paygrid.db import payment_methods as pm_db
from paygrid.db import payments as payments_db
from paygrid.db import transactions
from paygrid.db.executor import Connection
from paygrid.domain import payments as domain
from paygrid.domain.errors import (
    CapabilityNotSupported,
    CardError,
    PaymentInvalidState,
    ProviderUnavailable,
)
from paygrid.domain.events import EventType, payment_event_for
from paygrid.domain.payments import AttemptOutcome, PaymentAction, PaymentStatus
from paygrid.ids import new_id
from paygrid.schemas.common import RowLike
from paygrid.schemas.payments import Payment
from paygrid.services import (
    payment_method_ownership,
    payment_methods,
    provider_operations,
    routing,
)
from paygrid.services.context import Deps, Tenant
from paygrid.services.snapshots import emit_payment, payment_view


def return_url_for(deps: Deps, payment_id: str) -> str:
    """paygrid's own landing route for customers coming back from a provider redirect."""
    return f"{deps.settings.base_url()}/payments/{payment_id}/return"


log = structlog.get_logger("paygrid.authorization")


@dataclass(frozen=True, slots=True)
class Fallback:
    """Where a payment may go next if its current account provably was not reached."""

    targets: list[routing.Target]
    source: payment_methods.MethodSource


async def run_authorization(
    deps: Deps,
    payment: RowLike,
    attempt: RowLike,
    method: RowLike | None = None,
    earlier_attempts: Sequence[RowLike] | None = None,
    fallback: Fallback | None = None,
) -> Payment:
    """Call the connector for ``attempt`` and record the outcome. The payment method and the
    payment's earlier attempts are loaded when the caller does not hold them.

    Failover: only when the call provably never reached the provider (connection refused,
    DNS failure, an open circuit) does the payment move on to the next account in
    ``fallback``. A decline or an unknown outcome never fails over."""
    account_id = attempt["connector_account_id"]
    connector = await deps.connectors.connector_for(deps.pool, account_id)
    if method is None and attempt["payment_method_id"] is not None:
        method = await pm_db.get_payment_method(
            deps.pool, payment["merchant_id"], payment["livemode"], attempt["payment_method_id"]
        )
    if earlier_attempts is None:
        earlier_attempts = await _earlier_attempts(deps, payment["id"], attempt["id"])
    customer_reference = None
    if method is not None and method["customer_id"] is not None and account_id is not None:
        # A method attached to a provider's customer is charged as that customer's (Stripe).
        customer_reference = await customers_db.connector_reference(
            deps.pool, method["customer_id"], account_id
        )
    request = AuthorizeRequest(
        idempotency_key=attempt["id"],
        amount=payment["amount"],
        currency=payment["currency"],
        capture=payment["capture_method"] == "automatic",
        payment_method_token=method["connector_reference"] if method is not None else None,
        return_url=return_url_for(deps, payment["id"]),
        payment_id=payment["id"],
        email=payment["receipt_email"],
        channels=tuple(payment["payment_method_types"]),
        customer_reference=customer_reference,
    )
    started = time.perf_counter()
    try:
        async with deps.connectors.guard(account_id, "authorize"):
            result = await connector.authorize(request)
    except OutcomeUnknown:
        result = AttemptResult(AttemptOutcome.UNKNOWN, None)
    except ConnectorError as error:
        # Never processed: the provider could not be reached (ProviderUnreachable), or it
        # refused the request before doing anything (rejected credentials, a request it
        # cannot take). Safe to release the attempt and fail over.
        unreachable = isinstance(error, ProviderUnreachable)
        released, _ = await _record(
            deps,
            payment,
            attempt,
            earlier_attempts,
            AttemptResult(AttemptOutcome.UNKNOWN, None),
            _elapsed_ms(started),
            attempt_status="unreachable" if unreachable else "failed",
            action=PaymentAction.RELEASE_ATTEMPT,
            error=None if unreachable else rejection_of(error),
        )
        if released is not None and fallback is not None and fallback.targets:
            return await _fail_over(deps, payment, fallback)
        raise ProviderUnavailable(
            "The payment provider could not be reached; nothing was charged. Retry the confirm."
            if unreachable
            else f"The payment provider refused the request ({error}); nothing was charged.",
            payment_id=payment["id"],
            code="provider_unavailable" if unreachable else rejection_of(error)[0],
        ) from None
    return await apply_attempt_result(
        deps, payment, attempt, result, _elapsed_ms(started), earlier_attempts
    )


async def _fail_over(deps: Deps, payment: RowLike, fallback: Fallback) -> Payment:
    """Start a new attempt at the next account that can take the payment."""
    tenant = Tenant(payment["merchant_id"], payment["livemode"])
    try:
        choice = await routing.choose(
            deps,
            tenant,
            fallback.targets,
            fallback.source,
            manual_capture=payment["capture_method"] == "manual",
            customer_id=None,
            now=deps.clock.now(),
            email=payment["receipt_email"],
        )
    except (ProviderUnavailable, CapabilityNotSupported):
        raise ProviderUnavailable(
            "No payment provider could be reached; nothing was charged. Retry the confirm.",
            payment_id=payment["id"],
        ) from None
    remaining = fallback.targets[fallback.targets.index(choice.target) + 1 :]
    sources = frozenset({PaymentStatus.REQUIRES_CONFIRMATION})
    updated, attempt = await begin_attempt(deps, payment, choice, sources=sources)
    return await run_authorization(
        deps, updated, attempt, choice.method, fallback=Fallback(remaining, fallback.source)
    )


class _MethodTaken(Exception):
    """The saved method stopped being usable for the payment before its attempt was written."""


async def begin_attempt(
    deps: Deps,
    payment: RowLike,
    choice: routing.Choice,
    *,
    sources: frozenset[PaymentStatus],
    return_url: str | None = None,
) -> tuple[asyncpg.Record, asyncpg.Record]:
    """Move the payment to ``processing`` at the chosen account and record the pending
    attempt (and any accounts skipped on the way), in one transaction."""
    now = deps.clock.now()
    changes: dict[str, object] = {
        "connector": choice.target.provider,
        "connector_account_id": choice.target.account_id,
    }
    if return_url is not None:
        changes["return_url"] = return_url

    use = None
    if choice.method is not None and choice.new_method is None:
        use = payment_method_ownership.use_of(
            choice.method, payment_id=payment["id"], customer_id=payment["customer_id"]
        )

    async def begin(conn: Connection) -> tuple[asyncpg.Record, asyncpg.Record]:
        if choice.new_method is not None:
            await pm_db.insert_row(conn, choice.new_method, payment_id=payment["id"])
        if choice.method is not None:
            changes["payment_method_id"] = choice.method["id"]
        updated = await payments_db.transition(
            conn, payment["id"], sources=sources, target=PaymentStatus.PROCESSING, changes=changes
        )
        if updated is None:
            current = await payments_db.get_payment_unscoped(conn, payment["id"])
            assert current is not None
            raise domain.invalid_state(current["status"], PaymentAction.BEGIN_ATTEMPT)
        for target in choice.skipped:
            await payments_db.insert_attempt_row(
                conn, routing.skipped_attempt_row(payment["id"], target, payment["amount"], now)
            )
        if use is None:
            return updated, await payments_db.insert_attempt(
                conn,
                attempt_id=new_id("att"),
                payment_id=payment["id"],
                operation="authorize",
                connector=choice.target.provider,
                connector_account_id=choice.target.account_id,
                amount=updated["amount"],
                payment_method_id=updated["payment_method_id"],
            )
        attempt = await payments_db.insert_attempt_with_method(
            conn,
            use,
            attempt_id=new_id("att"),
            connector=choice.target.provider,
            connector_account_id=choice.target.account_id,
            amount=updated["amount"],
        )
        if attempt is None:
            raise _MethodTaken  # rolls the transition back
        return updated, attempt

    try:
        return await transactions.run(deps.pool, begin)
    except _MethodTaken:
        assert use is not None
        tenant = Tenant(payment["merchant_id"], payment["livemode"])
        await payment_method_ownership.refuse_lost_race(deps.pool, tenant, use)
    except asyncpg.UniqueViolationError as error:
        if error.constraint_name != "payment_attempts_one_in_flight":
            raise
        # A capture or void of this payment is in flight (its attempt is pending).
        current = await payments_db.get_payment_unscoped(deps.pool, payment["id"])
        assert current is not None
        raise PaymentInvalidState(
            "Another operation on this payment is in progress; retry shortly.",
            current_status=current["status"],
        ) from None


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
    view, came_late = await _record(
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
        if came_late and result.outcome in (AttemptOutcome.CAPTURED, AttemptOutcome.AUTHORIZED):
            await return_late_charge(deps, payment, attempt, result)
        return await _current_view(deps, payment["id"])
    if result.saved_method is not None and payment["payment_method_id"] is None:
        view = await _save_method(deps, payment, attempt, result.saved_method, result.channel)
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
    error: tuple[str, str] | None = None,
) -> tuple[Payment | None, bool]:
    """Write the attempt's outcome, the payment's transition and the event together; the
    snapshot is computed from the rows in hand. Returns the new view (``None`` when the
    guards refused) and whether this call recorded an answer its payment had moved past."""
    now = deps.clock.now()
    decline = result.decline
    attempt_changes: dict[str, Any] = {
        "status": attempt_status,
        "provider_reference": result.provider_reference or attempt["provider_reference"],
        "latency_ms": latency_ms if latency_ms is not None else attempt["latency_ms"],
        "error_code": decline.code
        if decline
        else (error[0] if error else _ERROR_CODES.get(attempt_status)),
        "decline_code": decline.decline_code if decline else None,
        "error_message": decline.message
        if decline
        else (error[1] if error else _ERROR_MESSAGES.get(attempt_status)),
        "completed_at": None if attempt_status in OPEN_ATTEMPT_STATUSES else now,
        "next_sync_at": next_sync_at(
            deps, attempt_status, _columns(attempt).get("sync_count", 0), now
        ),
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
            **_changes_for(action, payment, result, error),
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
    # This call recorded the provider's answer, but the payment had already moved on (e.g. a
    # hosted page paid after the payment was canceled): money may need giving back.
    came_late = attempt_updated and transition is not None and not payment_updated
    if not attempt_updated or (transition is not None and not payment_updated):
        return None, came_late
    return view, False


OPEN_ATTEMPT_STATUSES = frozenset({"pending", "requires_action", "unknown"})


def next_sync_at(
    deps: Deps, attempt_status: str, sync_count: int, now: datetime
) -> datetime | None:
    """When status sync next asks the provider about an attempt: on the schedule while the
    outcome is unknown, and once the action window closes for ``requires_action``."""
    if attempt_status == "unknown":
        delays = deps.settings.sync_delays()
        return now + timedelta(seconds=delays[min(sync_count, len(delays) - 1)])
    if attempt_status == "requires_action":
        return now + timedelta(hours=deps.settings.requires_action_expiry_hours)
    return None


def rejection_of(error: ConnectorError) -> tuple[str, str]:
    """The attempt's error code and message for a request the provider refused unprocessed."""
    if isinstance(error, InvalidCredentials):
        return "provider_credentials_rejected", "The provider rejected the account's API key."
    return "provider_rejected", str(error) or "The provider refused the request."


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
    action: PaymentAction,
    payment: RowLike,
    result: AttemptResult,
    error: tuple[str, str] | None = None,
) -> dict[str, object]:
    changes: dict[str, object] = {"next_action": None}
    amounts = domain.amounts_after(action, payment["amount"])
    if amounts is not None:
        changes["amount_capturable"] = amounts.amount_capturable
        changes["amount_received"] = amounts.amount_received
    if (
        action is PaymentAction.REQUIRE_ACTION
        and result.redirect_url is None
        and payment["next_action"]
    ):
        changes["next_action"] = payment["next_action"]  # a re-driven attempt keeps its URL
    elif action is PaymentAction.REQUIRE_ACTION:
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
    elif action is PaymentAction.FAIL_ATTEMPT and error is not None:
        changes["payment_method_id"] = None
        changes["last_payment_error"] = {"type": "api_error", "code": error[0], "message": error[1]}
    elif action is not PaymentAction.RELEASE_ATTEMPT:
        changes["last_payment_error"] = None
    return changes


async def return_late_charge(
    deps: Deps, payment: RowLike, attempt: RowLike, result: AttemptResult
) -> None:
    """The customer paid at the provider after the payment was canceled (Paystack's page
    cannot be closed): give the money back at once, and record the call as an attempt. Only
    the process that recorded the late answer does this, so it happens once."""
    current = await payments_db.get_payment_unscoped(deps.pool, payment["id"])
    assert current is not None
    reference = result.provider_reference or attempt["provider_reference"]
    if current["status"] != PaymentStatus.CANCELED or reference is None:
        return
    returned = [
        row
        for row in await payments_db.list_attempts(deps.pool, [payment["id"]])
        if row["operation"] in ("refund", "void")
        and row["refund_id"] is None
        and row["status"] != "unreachable"
    ]
    if returned:
        return  # already given back
    connector = await deps.connectors.connector_for(deps.pool, attempt["connector_account_id"])
    operation = "void" if result.outcome is AttemptOutcome.AUTHORIZED else "refund"
    log.warning(
        "payment.late_charge_returned",
        payment_id=payment["id"],
        attempt_id=attempt["id"],
        operation=operation,
    )
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await payments_db.insert_attempt(
            conn,
            attempt_id=new_id("att"),
            payment_id=payment["id"],
            operation=operation,
            connector=attempt["connector"],
            connector_account_id=attempt["connector_account_id"],
            amount=payment["amount"] if operation == "refund" else 0,
        )
    with contextlib.suppress(ProviderUnavailable):
        outcome = await provider_operations.call(
            deps,
            row,
            lambda key: (
                connector.refund(reference, payment["amount"], key)
                if operation == "refund"
                else connector.void(reference, key)
            ),
            payment_id=payment["id"],
        )
        async with deps.pool.acquire() as conn, conn.transaction():
            # The merchant hears of it: payment.updated, its attempts showing the return.
            if await provider_operations.record(conn, row, outcome):
                await emit_payment(conn, current, EventType.PAYMENT_UPDATED)


async def _save_method(
    deps: Deps, payment: RowLike, attempt: RowLike, token: TokenizedCard, channel: str | None
) -> Payment:
    """Keep the reusable authorization a provider returned (Paystack's authorization_code)
    as a payment method of the payment's customer, for recurring charges."""
    tenant = Tenant(payment["merchant_id"], payment["livemode"])
    row = payment_methods.new_method_row(
        tenant,
        token,
        attempt["connector"],
        deps.clock.now(),
        attempt["connector_account_id"],
        payment["customer_id"],
    )
    row["channel"] = channel
    async with deps.pool.acquire() as conn, conn.transaction():
        await pm_db.insert_row(conn, row, payment_id=payment["id"])
        await payments_db.set_payment_method(conn, payment["id"], row["id"])
    return await _current_view(deps, payment["id"])


async def sync_authorization(deps: Deps, payment: RowLike) -> Payment:
    """Ask the provider for the outcome of the payment's open authorization (after a
    redirect, or when the outcome was unknown) and apply it."""
    attempt = await payments_db.open_attempt(deps.pool, payment["id"], "authorize")
    if attempt is None:
        return await payment_view(deps.pool, payment)
    await sync_attempt(deps, payment, attempt)
    return await _current_view(deps, payment["id"])


async def sync_attempt(
    deps: Deps, payment: RowLike, attempt: RowLike, *, not_sent_before: datetime | None = None
) -> AttemptOutcome | None:
    """Ask the provider about one open authorize attempt and apply a definite answer.
    Returns the outcome, or ``None`` while the provider cannot say.

    With ``not_sent_before``: an attempt started before then, for which the provider has no
    charge at all, never went out (its process died first). It is closed ``not_sent`` and
    the payment returns to ``requires_payment_method`` (reported as ``DECLINED``)."""
    account_id = attempt["connector_account_id"]
    connector = await deps.connectors.connector_for(deps.pool, account_id)
    try:
        async with deps.connectors.guard(account_id, "retrieve"):
            result = await connector.retrieve(attempt["id"], attempt["provider_reference"])
    except NoSuchCharge:
        if not_sent_before is None or attempt["created_at"] >= not_sent_before:
            return None  # the request may still be on its way
        await _close_not_sent(deps, payment, attempt)
        return AttemptOutcome.DECLINED
    except (OutcomeUnknown, ProviderUnreachable):
        return None
    if result.outcome is AttemptOutcome.UNKNOWN:
        return None
    if result.outcome is AttemptOutcome.REQUIRES_ACTION and attempt["status"] == "requires_action":
        return result.outcome  # nothing new
    earlier = await _earlier_attempts(deps, payment["id"], attempt["id"])
    if (
        result.outcome is AttemptOutcome.REQUIRES_ACTION
        and result.redirect_url is None
        and attempt["status"] != "requires_action"
        and attempt["payment_method_id"] is None
    ):
        await _restart_lost_redirect(deps, payment, attempt, earlier)
        return result.outcome
    with contextlib.suppress(CardError):  # a decline is recorded on the payment
        await apply_attempt_result(deps, payment, attempt, result, None, earlier)
    return result.outcome


NOT_SENT: Final = (
    "attempt_not_sent",
    "The request never reached the provider (paygrid stopped before sending it); nothing "
    "was charged. Confirm the payment again with a payment method.",
)


async def _close_not_sent(deps: Deps, payment: RowLike, attempt: RowLike) -> None:
    """Close an attempt the provider never received and return its payment to
    ``requires_payment_method`` (for a one-step purchase too: paygrid has no failed
    status), with ``payment.payment_failed`` and ``last_payment_error.code`` =
    ``attempt_not_sent``."""
    earlier = await _earlier_attempts(deps, payment["id"], attempt["id"])
    await _record(
        deps,
        payment,
        attempt,
        earlier,
        AttemptResult(AttemptOutcome.UNKNOWN, None),
        None,
        attempt_status="not_sent",
        action=PaymentAction.FAIL_ATTEMPT,
        error=NOT_SENT,
    )
    log.warning("payment.attempt_not_sent", payment_id=payment["id"], attempt_id=attempt["id"])


async def _restart_lost_redirect(
    deps: Deps, payment: RowLike, attempt: RowLike, earlier: Sequence[RowLike]
) -> None:
    """A hosted page was created but its answer, with the page's address, was lost (the
    create timed out), and the provider's lookup does not give the address back (Paystack's
    verify). Nobody can reach that page, so nothing can be paid on it: close the attempt and
    open a fresh page at the same account, so the payment has an address to send the
    customer to."""
    released, _ = await _record(
        deps,
        payment,
        attempt,
        earlier,
        AttemptResult(AttemptOutcome.UNKNOWN, attempt["provider_reference"]),
        None,
        attempt_status="failed",
        action=PaymentAction.RELEASE_ATTEMPT,
        error=("redirect_lost", "The provider's page address was lost; a new page was opened."),
    )
    if released is None:
        return
    target = await routing.target_of(
        deps.pool, attempt["connector_account_id"], deps.connectors.providers
    )
    choice = routing.Choice(target, None)
    sources = frozenset({PaymentStatus.REQUIRES_CONFIRMATION})
    updated, fresh = await begin_attempt(deps, payment, choice, sources=sources)
    with contextlib.suppress(CardError, ProviderUnavailable):
        await run_authorization(deps, updated, fresh)


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
