"""Start an authorize attempt: the payment moves to ``processing`` at the chosen target and
its pending attempt, after a closed one for each account skipped on the way, is written in
the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from paygrid.db import payment_methods as pm_db
from paygrid.db import payments as payments_db
from paygrid.db import transactions
from paygrid.db.executor import Connection
from paygrid.db.payment_methods import PaymentMethodRow
from paygrid.db.payments import AttemptRow, PaymentChanges, PaymentRow, Transition
from paygrid.dependencies import Deps
from paygrid.domain import payments as domain
from paygrid.domain.errors import PaymentInvalidState
from paygrid.domain.payments import AttemptOperation, AttemptStatus, PaymentAction, PaymentStatus
from paygrid.services import payment_method_ownership
from paygrid.services.payments.attempts import UNREACHABLE, new_attempt
from paygrid.services.payments.choice import Choice
from paygrid.services.payments.views import tenant_of


@dataclass(frozen=True, slots=True)
class Begun:
    """An authorize attempt written and not yet answered, with its payment (as the attempt
    left it) and, when held, the payment method it pays with."""

    payment: PaymentRow
    attempt: AttemptRow
    method: PaymentMethodRow | None = None


def attempts_at(
    payment: PaymentRow, choice: Choice, now: datetime
) -> tuple[list[AttemptRow], AttemptRow]:
    """The closed attempts of the accounts ``choice`` skipped, and the pending one at its
    target."""
    skipped = [
        new_attempt(
            payment.id,
            AttemptOperation.AUTHORIZE,
            connector=target.provider,
            account_id=target.account_id,
            amount=payment.amount,
            now=now,
            status=AttemptStatus.UNREACHABLE,
            error=UNREACHABLE,
        )
        for target in choice.skipped
    ]
    pending = new_attempt(
        payment.id,
        AttemptOperation.AUTHORIZE,
        connector=choice.target.provider,
        account_id=choice.target.account_id,
        amount=payment.amount,
        now=now,
        payment_method_id=payment.payment_method_id,
    )
    return skipped, pending


def _changes(choice: Choice, return_url: str | None) -> PaymentChanges:
    """The payment's columns an attempt at ``choice`` sets."""
    changes: PaymentChanges = {
        "connector": choice.target.provider,
        "connector_account_id": choice.target.account_id,
    }
    if return_url is not None:
        changes["return_url"] = return_url
    if choice.method is not None:
        changes["payment_method_id"] = choice.method.id
    return changes


class _MethodTaken(Exception):
    """The saved method stopped being usable for the payment before its attempt was written."""


async def begin_attempt(
    deps: Deps,
    payment: PaymentRow,
    choice: Choice,
    *,
    sources: frozenset[PaymentStatus],
    return_url: str | None = None,
) -> Begun:
    """Move the payment to ``processing`` at ``choice``'s target and record the pending
    attempt (and any accounts skipped on the way), in one transaction."""
    now = deps.clock.now()
    move = Transition(sources, PaymentStatus.PROCESSING, _changes(choice, return_url), now)
    use = None
    if choice.method is not None and choice.new_method is None:
        use = payment_method_ownership.use_of(
            choice.method, payment_id=payment.id, customer_id=payment.customer_id
        )

    async def begin(conn: Connection) -> Begun:
        if choice.new_method is not None:
            await pm_db.insert_row(conn, choice.new_method, payment_id=payment.id)
        updated = await payments_db.transition(conn, payment.id, move)
        if updated is None:
            current = await payments_db.payment_by_id(conn, payment.id)
            assert current is not None
            raise domain.invalid_state(current.status, PaymentAction.BEGIN_ATTEMPT)
        skipped, attempt = attempts_at(updated, choice, now)
        for row in skipped:
            await payments_db.insert_attempt(conn, row)
        if use is None:
            await payments_db.insert_attempt(conn, attempt)
        elif not await payments_db.insert_attempt_with_method(conn, use, attempt):
            raise _MethodTaken  # rolls the transition back
        return Begun(updated, attempt, choice.method)

    try:
        return await transactions.run(deps.pool, begin)
    except _MethodTaken:
        assert use is not None
        await payment_method_ownership.refuse_lost_race(deps.pool, tenant_of(payment), use)
    except asyncpg.UniqueViolationError as error:
        if error.constraint_name != "payment_attempts_one_in_flight":
            raise
        raise await in_progress(deps, payment.id) from None


async def in_progress(deps: Deps, payment_id: str) -> PaymentInvalidState:
    """A capture or void of this payment is in flight (its attempt is pending)."""
    current = await payments_db.payment_by_id(deps.pool, payment_id)
    assert current is not None
    return PaymentInvalidState(
        "Another operation on this payment is in progress; retry shortly.",
        current_status=current.status.value,
    )
