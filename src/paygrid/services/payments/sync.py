"""Ask the provider about an open authorization (after a redirect, when the outcome was
unknown, or for status sync) and apply a definite answer."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime
from typing import Final

import structlog

from paygrid.connectors.base import AttemptResult, NoSuchCharge, OutcomeUnknown, ProviderUnreachable
from paygrid.db import payments as payments_db
from paygrid.db.payments import AttemptRow, PaymentRow
from paygrid.dependencies import Deps
from paygrid.domain.errors import CardError, ProviderUnavailable
from paygrid.domain.payments import (
    AttemptOperation,
    AttemptOutcome,
    AttemptStatus,
    PaymentAction,
    PaymentStatus,
)
from paygrid.schemas.payments import Payment
from paygrid.services import routing
from paygrid.services.payments.attempts import AttemptError
from paygrid.services.payments.authorize import authorize
from paygrid.services.payments.begin import begin_attempt
from paygrid.services.payments.outcomes import NOT_SENT, apply_attempt_result, record
from paygrid.services.payments.plan import pinned
from paygrid.services.payments.views import current_view, tenant_of, view_of

log = structlog.get_logger("paygrid.authorization")

_REDIRECT_LOST: Final = AttemptError(
    "redirect_lost", "The provider's page address was lost; a new page was opened."
)


async def sync_authorization(deps: Deps, payment: PaymentRow) -> Payment:
    """Ask the provider for the outcome of the payment's open authorization (after a
    redirect, or when the outcome was unknown) and apply it."""
    attempt = await payments_db.open_attempt(deps.pool, payment.id, AttemptOperation.AUTHORIZE)
    if attempt is None:
        return await view_of(deps.pool, payment)
    await sync_attempt(deps, payment, attempt)
    return await current_view(deps, payment.id)


async def sync_attempt(
    deps: Deps,
    payment: PaymentRow,
    attempt: AttemptRow,
    *,
    not_sent_before: datetime | None = None,
) -> AttemptOutcome | None:
    """Ask the provider about one open authorize attempt and apply a definite answer.
    Returns the outcome, or ``None`` while the provider cannot say.

    With ``not_sent_before``: an attempt started before then, for which the provider has no
    charge at all, never went out (its process died first). It is closed ``not_sent`` and
    the payment returns to ``requires_payment_method`` (reported as ``DECLINED``)."""
    account_id = attempt.connector_account_id
    connector = await deps.connectors.connector_for(deps.pool, account_id)
    try:
        async with deps.connectors.guard(account_id, "retrieve"):
            result = await connector.retrieve(attempt.id, attempt.provider_reference)
    except NoSuchCharge:
        if not_sent_before is None or attempt.created_at >= not_sent_before:
            return None  # the request may still be on its way
        await _close_not_sent(deps, payment, attempt)
        return AttemptOutcome.DECLINED
    except (OutcomeUnknown, ProviderUnreachable):
        return None
    if result.outcome is AttemptOutcome.UNKNOWN:
        return None
    waiting = attempt.status is AttemptStatus.REQUIRES_ACTION
    if result.outcome is AttemptOutcome.REQUIRES_ACTION and waiting:
        return result.outcome  # nothing new
    earlier = await _earlier(deps, attempt)
    if (
        result.outcome is AttemptOutcome.REQUIRES_ACTION
        and result.redirect_url is None
        and attempt.payment_method_id is None
    ):
        await _restart_lost_redirect(deps, payment, attempt, earlier)
        return result.outcome
    with contextlib.suppress(CardError):  # a decline is recorded on the payment
        await apply_attempt_result(deps, payment, attempt, result, None, earlier)
    return result.outcome


async def _earlier(deps: Deps, attempt: AttemptRow) -> list[AttemptRow]:
    rows = await payments_db.attempts_of(deps.pool, [attempt.payment_id])
    return [row for row in rows if row.id != attempt.id]


async def _close_not_sent(deps: Deps, payment: PaymentRow, attempt: AttemptRow) -> None:
    """Close an attempt the provider never received and return its payment to
    ``requires_payment_method`` (for a one-step purchase too: paygrid has no failed
    status), with ``payment.payment_failed`` and ``last_payment_error.code`` =
    ``attempt_not_sent``."""
    await record(
        deps,
        payment,
        attempt,
        await _earlier(deps, attempt),
        AttemptResult(AttemptOutcome.UNKNOWN, None),
        None,
        status=AttemptStatus.NOT_SENT,
        action=PaymentAction.FAIL_ATTEMPT,
        error=NOT_SENT,
    )
    log.warning("payment.attempt_not_sent", payment_id=payment.id, attempt_id=attempt.id)


async def _restart_lost_redirect(
    deps: Deps, payment: PaymentRow, attempt: AttemptRow, earlier: Sequence[AttemptRow]
) -> None:
    """A hosted page was created but its answer, with the page's address, was lost (the
    create timed out), and the provider's lookup does not give the address back (Paystack's
    verify). Nobody can reach that page, so nothing can be paid on it: close the attempt and
    open a fresh page at the same account, so the payment has an address to send the
    customer to."""
    released, _ = await record(
        deps,
        payment,
        attempt,
        earlier,
        AttemptResult(AttemptOutcome.UNKNOWN, attempt.provider_reference),
        None,
        status=AttemptStatus.FAILED,
        action=PaymentAction.RELEASE_ATTEMPT,
        error=_REDIRECT_LOST,
    )
    if released is None:
        return
    target = await routing.target_of(
        deps.pool, attempt.connector_account_id, deps.connectors.providers
    )
    choice, rest = await pinned(tenant_of(payment), target, payment).next(deps)
    sources = frozenset({PaymentStatus.REQUIRES_CONFIRMATION})
    begun = await begin_attempt(deps, payment, choice, sources=sources)
    with contextlib.suppress(CardError, ProviderUnavailable):
        await authorize(deps, begun, rest)
