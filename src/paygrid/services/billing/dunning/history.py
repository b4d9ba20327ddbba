"""An invoice's dunning history, for the dashboard's invoice page: each failed, skipped or
expired attempt with its decline code, class and the retry it scheduled."""

from __future__ import annotations

from dataclasses import dataclass

from paygrid.db import dunning as dunning_db
from paygrid.dependencies import Deps
from paygrid.schemas.common import unix
from paygrid.services.billing.invoices import load
from paygrid.services.context import Tenant


@dataclass(frozen=True, slots=True)
class AttemptLine:
    attempt: int | None  # None for a skipped retry
    outcome: str  # a DunningOutcome: failed, requires_action, action_expired, skipped
    payment: str | None
    payment_method: str | None
    code: str | None
    decline_code: str | None
    classification: str | None  # hard, soft, action
    message: str | None
    next_payment_attempt: int | None  # the retry it scheduled (Unix seconds)
    exhausted: bool  # the schedule ended here
    created: int


async def attempt_history(deps: Deps, tenant: Tenant, invoice_id: str) -> list[AttemptLine]:
    """The invoice's dunning lines, oldest first (404 for another tenant's invoice)."""
    row = await load(deps.pool, tenant, invoice_id)
    return [
        AttemptLine(
            attempt=line.attempt,
            outcome=line.outcome.value,
            payment=line.payment_id,
            payment_method=line.payment_method_id,
            code=line.code,
            decline_code=line.decline_code,
            classification=None if line.classification is None else line.classification.value,
            message=line.message,
            next_payment_attempt=unix(line.next_payment_attempt),
            exhausted=line.exhausted,
            created=unix(line.created_at) or 0,
        )
        for line in await dunning_db.attempts_of(deps.pool, row.id)
    ]
