"""Calls that move money on an existing authorization or charge: capture, void, refund.

Each call is recorded as an attempt before it is made, and the attempt id is the provider's
idempotency key, so a retry after a crash repeats the same provider operation instead of
making a new one.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

from paygrid.connectors.base import (
    ConnectorError,
    InvalidCredentials,
    OperationResult,
    OutcomeUnknown,
    ProviderUnreachable,
)
from paygrid.db import payments as payments_db
from paygrid.db.executor import Connection
from paygrid.domain.errors import PaymentInvalidState, ProviderUnavailable
from paygrid.ids import new_id
from paygrid.services.context import Deps

ProviderCall = Callable[[str], Awaitable[OperationResult]]


async def begin(
    conn: Connection,
    payment: asyncpg.Record,
    operation: str,
    amount: int,
    *,
    refund_id: str | None = None,
) -> asyncpg.Record:
    """Record the intent to call the provider. A capture or void already in flight for this
    payment is reused rather than duplicated."""
    if operation != "refund":
        existing = await payments_db.open_attempt(conn, payment["id"], operation)
        if existing is not None:
            return existing
    try:
        async with conn.transaction():  # a savepoint, so a conflict leaves the caller's tx usable
            return await payments_db.insert_attempt(
                conn,
                attempt_id=new_id("att"),
                payment_id=payment["id"],
                operation=operation,
                connector=payment["connector"],
                connector_account_id=payment["connector_account_id"],
                amount=amount,
                refund_id=refund_id,
            )
    except asyncpg.UniqueViolationError:
        raise PaymentInvalidState(
            "Another operation on this payment is in progress; retry shortly.",
            current_status=payment["status"],
        ) from None


@dataclass(frozen=True, slots=True)
class Outcome:
    result: OperationResult
    latency_ms: int


async def call(
    deps: Deps,
    attempt: asyncpg.Record,
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
    pool = deps.pool
    started = time.perf_counter()
    repeat = repeat or attempt["status"] == "unknown"
    try:
        async with deps.connectors.guard(attempt["connector_account_id"], attempt["operation"]):
            result = await provider_call(attempt["id"])
    except ConnectorError as error:
        if repeat:
            raise ProviderUnavailable(
                "The provider could not be asked for the outcome of the earlier call; retry.",
                payment_id=payment_id,
                code="provider_timeout",
            ) from None
        raise await _closed(pool, attempt, error, started, payment_id) from None
    return Outcome(result, round((time.perf_counter() - started) * 1000))


async def _closed(
    pool: asyncpg.Pool,
    attempt: asyncpg.Record,
    error: ConnectorError,
    started: float,
    payment_id: str,
) -> ProviderUnavailable:
    """Close the attempt of a first call that failed, and the error to raise for it."""
    if isinstance(error, ProviderUnreachable):
        await _close(pool, attempt, "unreachable", started, "provider_unavailable")
        return ProviderUnavailable(
            "The payment provider could not be reached; nothing changed. Retry the request.",
            payment_id=payment_id,
        )
    if isinstance(error, OutcomeUnknown):
        await _close(pool, attempt, "unknown", started, "outcome_unknown")
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
    await _close(pool, attempt, "failed", started, code)
    return ProviderUnavailable(
        f"The payment provider refused the request ({error}); nothing changed.",
        payment_id=payment_id,
        code=code,
    )


# ProviderUnavailable codes after which the provider provably did nothing.
NOTHING_HAPPENED = frozenset(
    {"provider_unavailable", "provider_rejected", "provider_credentials_rejected"}
)


async def record(conn: Connection, attempt: asyncpg.Record, outcome: Outcome) -> bool:
    """Record a definite answer; False when another request already recorded it."""
    result = outcome.result
    status = "pending" if result.pending else "succeeded" if result.succeeded else "failed"
    row = await payments_db.finish_attempt(
        conn,
        attempt["id"],
        status=status,
        provider_reference=result.provider_reference,
        latency_ms=outcome.latency_ms,
        error_code=result.failure_reason,
    )
    return row is not None


async def _close(
    pool: asyncpg.Pool, attempt: asyncpg.Record, status: str, started: float, error_code: str
) -> None:
    await payments_db.finish_attempt(
        pool,
        attempt["id"],
        status=status,
        provider_reference=None,
        latency_ms=round((time.perf_counter() - started) * 1000),
        error_code=error_code,
    )
