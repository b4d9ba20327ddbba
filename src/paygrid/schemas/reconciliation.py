"""Reconciliation runs (``object: "reconciliation_run"``) and the discrepancies they find
(``object: "reconciliation_discrepancy"``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from paygrid.db.reconciliation_runs import DiscrepancyRow, RunRow
from paygrid.domain.reconciliation import DiscrepancyStatus, DiscrepancyType
from paygrid.domain.reconciliation_runs import RunStatus, RunTrigger
from paygrid.schemas.common import RequestModel, unix

# A run covers at most this many days (a longer window is several runs).
MAX_WINDOW_SECONDS = 92 * 24 * 3600


class ReconciliationRunCreate(RequestModel):
    connector_account: str = Field(
        min_length=1, max_length=64, description="A Paystack `ca_...` of yours."
    )
    from_: int = Field(alias="from", ge=0, description="Window start, Unix time (inclusive).")
    to: int = Field(ge=1, description="Window end, Unix time (exclusive).")
    heal: bool = Field(
        default=False,
        description="Fix what is safe: status drift (through the payment's state machine) "
        "and provider-side refunds (imported). Money differences stay open.",
    )


class ReconciliationRun(BaseModel):
    id: str = Field(examples=["recon_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"])
    object: Literal["reconciliation_run"] = "reconciliation_run"
    connector_account: str
    status: RunStatus
    trigger: RunTrigger = Field(description="`api`, `schedule` (the daily run) or `cli`.")
    window_start: int = Field(description="Unix time, inclusive.")
    window_end: int = Field(description="Unix time, exclusive.")
    heal: bool
    objects_compared: int = Field(description="Progress: objects compared so far, both sides.")
    counts: dict[str, int] = Field(
        description="New discrepancies found by this run, per type (every type present)."
    )
    already_known: int = Field(description="Discrepancies found again, recorded earlier.")
    healed: int = Field(description="Discrepancies this run healed.")
    failure_message: str | None
    livemode: bool
    created: int
    completed_at: int | None

    @classmethod
    def from_row(cls, row: RunRow) -> ReconciliationRun:
        return cls(
            id=row.id,
            connector_account=row.connector_account_id,
            status=row.status,
            trigger=row.trigger,
            window_start=unix(row.window_start) or 0,
            window_end=unix(row.window_end) or 0,
            heal=row.heal,
            objects_compared=row.objects_compared,
            counts={t.value: row.counts.get(t.value, 0) for t in DiscrepancyType},
            already_known=row.already_known,
            healed=row.healed,
            failure_message=row.failure_message,
            livemode=row.livemode,
            created=unix(row.created_at) or 0,
            completed_at=unix(row.completed_at),
        )


class ReconciliationDiscrepancy(BaseModel):
    id: str = Field(examples=["rdis_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"])
    object: Literal["reconciliation_discrepancy"] = "reconciliation_discrepancy"
    run: str = Field(description="The run that first found it.")
    connector_account: str
    type: DiscrepancyType
    status: DiscrepancyStatus
    payment: str | None
    refund: str | None
    provider_reference: str | None
    currency: str | None
    paygrid_value: str | None = Field(description="What paygrid records (amount, status...).")
    provider_value: str | None = Field(description="What the provider reports.")
    description: str
    healable: bool
    resolution_note: str | None
    resolved_at: int | None
    healed_by_run: str | None
    livemode: bool
    created: int

    @classmethod
    def from_row(cls, row: DiscrepancyRow) -> ReconciliationDiscrepancy:
        return cls(
            id=row.id,
            run=row.run_id,
            connector_account=row.connector_account_id,
            type=row.type,
            status=row.status,
            payment=row.payment_id,
            refund=row.refund_id,
            provider_reference=row.provider_reference,
            currency=row.currency.strip() if row.currency else None,
            paygrid_value=row.paygrid_value,
            provider_value=row.provider_value,
            description=row.description,
            healable=row.healable,
            resolution_note=row.resolution_note,
            resolved_at=unix(row.resolved_at),
            healed_by_run=row.healed_by_run_id,
            livemode=row.livemode,
            created=unix(row.created_at) or 0,
        )


class DiscrepancyResolve(RequestModel):
    note: str = Field(min_length=1, max_length=2000, description="Why it is resolved.")
