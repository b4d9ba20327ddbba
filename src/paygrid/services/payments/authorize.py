"""The authorize loop: walk the plan, one attempt at a time, until a provider answers.

Only when a call provably never reached the provider (connection refused, DNS failure, an
open circuit) or was refused unprocessed does the payment move on to the plan's next target;
a decline or an unknown outcome never fails over. Each attempt is written (pending) before
its call and the provider deduplicates on the attempt id, so re-driving an attempt after a
crash never charges twice.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from paygrid.connectors.base import (
    AttemptResult,
    AuthorizeRequest,
    ConnectorError,
    OutcomeUnknown,
    ProviderUnreachable,
)
from paygrid.db import customers as customers_db
from paygrid.db import payment_methods as pm_db
from paygrid.db import payments as payments_db
from paygrid.db.payments import AttemptRow, PaymentRow
from paygrid.dependencies import Deps
from paygrid.domain.errors import CapabilityNotSupported, ProviderUnavailable
from paygrid.domain.payments import (
    AttemptOperation,
    AttemptOutcome,
    AttemptStatus,
    CaptureMethod,
    PaymentAction,
    PaymentStatus,
)
from paygrid.schemas.payments import Payment
from paygrid.services.idempotency_keys import IdempotencyClaim
from paygrid.services.payments.attempts import UNREACHABLE
from paygrid.services.payments.begin import Begun, begin_attempt
from paygrid.services.payments.outcomes import apply_attempt_result, record, rejection_of
from paygrid.services.payments.plan import Plan

_FAILOVER_SOURCES: Final = frozenset({PaymentStatus.REQUIRES_CONFIRMATION})


def return_url_for(deps: Deps, payment_id: str) -> str:
    """paygrid's own landing route for customers coming back from a provider redirect."""
    return f"{deps.settings.base_url()}/payments/{payment_id}/return"


@dataclass(frozen=True, slots=True)
class _Refused:
    """A call the provider never processed: unreachable, or refused before doing anything
    (rejected credentials, a request it cannot take). Safe to release and fail over."""

    error: ConnectorError
    latency_ms: int

    @property
    def unreachable(self) -> bool:
        return isinstance(self.error, ProviderUnreachable)

    def failure(self, payment_id: str) -> ProviderUnavailable:
        if self.unreachable:
            return ProviderUnavailable(
                "The payment provider could not be reached; nothing was charged. "
                "Retry the confirm.",
                payment_id=payment_id,
                code="provider_unavailable",
            )
        return ProviderUnavailable(
            f"The payment provider refused the request ({self.error}); nothing was charged.",
            payment_id=payment_id,
            code=rejection_of(self.error).code,
        )


async def authorize(
    deps: Deps,
    begun: Begun,
    plan: Plan | None,
    *,
    earlier: Sequence[AttemptRow] | None = None,
    claim: IdempotencyClaim | None = None,
) -> Payment:
    """Call the provider for ``begun``'s attempt and record the answer; while a call is
    refused unprocessed and ``plan`` has targets left, release the attempt and try the next
    one. Without a plan (an attempt re-driven where it is), nothing fails over. ``earlier``
    are the payment's other attempts, loaded when the caller does not hold them. ``claim``:
    the request's idempotency key, whose response the answer's record stores."""
    while True:
        if earlier is None:
            earlier = [
                row
                for row in await payments_db.attempts_of(deps.pool, [begun.payment.id])
                if row.id != begun.attempt.id
            ]
        answer = await _call(deps, begun)
        if not isinstance(answer, _Refused):
            result, latency_ms = answer
            return await apply_attempt_result(
                deps, begun.payment, begun.attempt, result, latency_ms, earlier, claim=claim
            )
        released = await _release(deps, begun, earlier, answer)
        if not released or plan is None or plan.exhausted:
            raise answer.failure(begun.payment.id) from None
        begun, plan = await _fail_over(deps, begun.payment, plan)
        earlier = None


async def _call(deps: Deps, begun: Begun) -> tuple[AttemptResult, int] | _Refused:
    """Ask the attempt's provider to authorize; an unknown outcome is an answer too."""
    account_id = begun.attempt.connector_account_id
    connector = await deps.connectors.connector_for(deps.pool, account_id)
    request = await _request(deps, begun)
    started = time.perf_counter()
    try:
        async with deps.connectors.guard(account_id, AttemptOperation.AUTHORIZE.value):
            result = await connector.authorize(request)
    except OutcomeUnknown:
        result = AttemptResult(AttemptOutcome.UNKNOWN, None)
    except ConnectorError as error:
        return _Refused(error, _elapsed_ms(started))
    return result, _elapsed_ms(started)


async def _request(deps: Deps, begun: Begun) -> AuthorizeRequest:
    payment, attempt, method = begun.payment, begun.attempt, begun.method
    if method is None and attempt.payment_method_id is not None:
        method = await pm_db.get_payment_method(
            deps.pool, payment.merchant_id, payment.livemode, attempt.payment_method_id
        )
    customer_reference = None
    account_id = attempt.connector_account_id
    if method is not None and method.customer_id is not None and account_id is not None:
        # A method attached to a provider's customer is charged as that customer's (Stripe).
        customer_reference = await customers_db.connector_reference(
            deps.pool, method.customer_id, account_id
        )
    return AuthorizeRequest(
        idempotency_key=attempt.id,
        amount=payment.amount,
        currency=payment.currency,
        capture=payment.capture_method is CaptureMethod.AUTOMATIC,
        payment_method_token=method.connector_reference if method is not None else None,
        return_url=return_url_for(deps, payment.id),
        payment_id=payment.id,
        email=payment.receipt_email,
        channels=tuple(payment.payment_method_types),
        customer_reference=customer_reference,
        off_session=payment.off_session,
        setup_future_usage=payment.setup_future_usage is not None,
        merchant_idempotency_key=payment.idempotency_key,
    )


async def _release(
    deps: Deps, begun: Begun, earlier: Sequence[AttemptRow], refused: _Refused
) -> bool:
    """Close the attempt (``unreachable`` or ``failed``) and return the payment to
    ``requires_confirmation``; False when the payment moved on meanwhile."""
    released, _ = await record(
        deps,
        begun.payment,
        begun.attempt,
        earlier,
        AttemptResult(AttemptOutcome.UNKNOWN, None),
        refused.latency_ms,
        status=AttemptStatus.UNREACHABLE if refused.unreachable else AttemptStatus.FAILED,
        action=PaymentAction.RELEASE_ATTEMPT,
        error=UNREACHABLE if refused.unreachable else rejection_of(refused.error),
    )
    return released is not None


async def _fail_over(deps: Deps, payment: PaymentRow, plan: Plan) -> tuple[Begun, Plan]:
    """Start a new attempt at the plan's next target that can take the payment."""
    try:
        choice, rest = await plan.next(deps)
    except (ProviderUnavailable, CapabilityNotSupported):
        raise ProviderUnavailable(
            "No payment provider could be reached; nothing was charged. Retry the confirm.",
            payment_id=payment.id,
        ) from None
    return await begin_attempt(deps, payment, choice, sources=_FAILOVER_SOURCES), rest


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
