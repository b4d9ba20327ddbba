"""Calls that move money on an existing authorization or charge: capture, void, refund.

Each call is recorded as an attempt before it is made, and the attempt id is the provider's
idempotency key, so a retry after a crash repeats the same provider operation instead of
making a new one.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import asyncpg

from paygrid.connectors.base import (
    Capability,
    ConnectorError,
    InvalidCredentials,
    OperationResult,
    OutcomeUnknown,
    ProviderUnreachable,
)
from paygrid.db import payments as payments_db
from paygrid.db.executor import Connection, Executor
from paygrid.db.payments import AttemptRow, PaymentRow
from paygrid.dependencies import Deps
from paygrid.domain.errors import CapabilityNotSupported, PaymentInvalidState, ProviderUnavailable
from paygrid.domain.payments import AttemptOperation, AttemptStatus
from paygrid.services import routing
from paygrid.services.payments.attempts import new_attempt

ProviderCall = Callable[[str], Awaitable[OperationResult]]

# ProviderUnavailable codes after which the provider provably did nothing.
NOTHING_HAPPENED: Final = frozenset(
    {"provider_unavailable", "provider_rejected", "provider_credentials_rejected"}
)


async def begin(
    conn: Connection,
    payment: PaymentRow,
    operation: AttemptOperation,
    amount: int,
    *,
    now: datetime,
    refund_id: str | None = None,
) -> AttemptRow:
    """Record the intent to call the provider. A capture or void already in flight for this
    payment is reused rather than duplicated."""
    if operation is not AttemptOperation.REFUND:
        existing = await payments_db.open_attempt(conn, payment.id, operation)
        if existing is not None:
            return existing
    assert payment.connector is not None, "a payment holding funds has a connector"
    attempt = new_attempt(
        payment.id,
        operation,
        connector=payment.connector,
        account_id=payment.connector_account_id,
        amount=amount,
        now=now,
        refund_id=refund_id,
    )
    try:
        async with conn.transaction():  # a savepoint, so a conflict leaves the caller's tx usable
            await payments_db.insert_attempt(conn, attempt)
    except asyncpg.UniqueViolationError:
        raise PaymentInvalidState(
            "Another operation on this payment is in progress; retry shortly.",
            current_status=payment.status.value,
        ) from None
    return attempt


@dataclass(frozen=True, slots=True)
class Outcome:
    result: OperationResult
    latency_ms: int
    at: datetime  # when the answer came, on the clock: a final one completes the attempt


async def call(
    deps: Deps,
    attempt: AttemptRow,
    provider_call: ProviderCall,
    *,
    payment_id: str,
    repeat: bool = False,
) -> Outcome:
    """Make the provider call for ``attempt``. The caller records a definite answer with
    ``record`` in the same transaction as the change it causes.

    An unreachable provider closes the attempt and raises ``ProviderUnavailable``; an unknown
    outcome leaves the attempt open (``unknown``) for a retry with the same key.

    A ``repeat`` (status sync, or a retry of an attempt whose outcome is unknown) may follow
    a first call that did reach the provider, so a failure to reach it now proves nothing:
    the attempt stays open and ``ProviderUnavailable`` says ``provider_timeout``."""
    started = time.perf_counter()
    repeat = repeat or attempt.status is AttemptStatus.UNKNOWN
    try:
        async with deps.connectors.guard(attempt.connector_account_id, attempt.operation.value):
            result = await provider_call(attempt.id)
    except ConnectorError as error:
        if repeat:
            raise ProviderUnavailable(
                "The provider could not be asked for the outcome of the earlier call; retry.",
                payment_id=payment_id,
                code="provider_timeout",
            ) from None
        raise await _closed(deps, attempt, error, started, payment_id) from None
    return Outcome(result, _elapsed_ms(started), deps.clock.now())


async def _closed(
    deps: Deps,
    attempt: AttemptRow,
    error: ConnectorError,
    started: float,
    payment_id: str,
) -> ProviderUnavailable:
    """Close the attempt of a first call that failed, and the error to raise for it."""
    pool, now = deps.pool, deps.clock.now()
    if isinstance(error, ProviderUnreachable):
        await _close(pool, attempt, AttemptStatus.UNREACHABLE, started, "provider_unavailable", now)
        return ProviderUnavailable(
            "The payment provider could not be reached; nothing changed. Retry the request.",
            payment_id=payment_id,
        )
    if isinstance(error, OutcomeUnknown):
        await _close(pool, attempt, AttemptStatus.UNKNOWN, started, "outcome_unknown", now)
        return ProviderUnavailable(
            "The provider did not answer in time; retry the request to learn the outcome.",
            payment_id=payment_id,
            code="provider_timeout",
        )
    # refused before any processing (e.g. a rejected key)
    code = (
        "provider_credentials_rejected"
        if isinstance(error, InvalidCredentials)
        else "provider_rejected"
    )
    await _close(pool, attempt, AttemptStatus.FAILED, started, code, now)
    return ProviderUnavailable(
        f"The payment provider refused the request ({error}); nothing changed.",
        payment_id=payment_id,
        code=code,
    )


async def record(conn: Connection, attempt: AttemptRow, outcome: Outcome) -> bool:
    """Record a definite answer; False when another request already recorded it."""
    result = outcome.result
    if result.pending:
        status = AttemptStatus.PENDING
    else:
        status = AttemptStatus.SUCCEEDED if result.succeeded else AttemptStatus.FAILED
    row = await payments_db.finish_attempt(
        conn,
        attempt.id,
        status=status,
        provider_reference=result.provider_reference,
        latency_ms=outcome.latency_ms,
        error_code=result.failure_reason,
        now=outcome.at,
    )
    return row is not None


async def _close(
    pool: asyncpg.Pool,
    attempt: AttemptRow,
    status: AttemptStatus,
    started: float,
    error_code: str,
    now: datetime,
) -> None:
    await payments_db.finish_attempt(
        pool,
        attempt.id,
        status=status,
        provider_reference=None,
        latency_ms=_elapsed_ms(started),
        error_code=error_code,
        now=now,
    )


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


async def capabilities(conn: Executor, payment: PaymentRow) -> Capability:
    return (await routing.target_of(conn, payment.connector_account_id)).capabilities


async def require(conn: Connection, payment: PaymentRow, capability: Capability, what: str) -> None:
    """400 ``capability_not_supported`` when the payment's connector cannot do ``what``."""
    if capability not in await capabilities(conn, payment):
        raise CapabilityNotSupported(
            f"The {payment.connector} connector does not support {what}.",
            param="amount" if "partial" in what else None,
        )


async def provider_reference(deps: Deps, payment_id: str) -> str:
    """The provider's reference of the payment's authorization, for captures and voids."""
    attempt = await payments_db.latest_authorization(deps.pool, payment_id)
    assert attempt is not None, "a payment holding funds has an authorization with a reference"
    return str(attempt.provider_reference)
