"""Settlements (``object: "settlement"``): what a provider paid out, with Stripe's payout
names where they exist, and the balance transactions it is made of. Every amount is an
integer in minor units, and ``gross - fee = net`` holds exactly for each object."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from paygrid.db.settlements import SettlementRow, SettlementTransactionRow
from paygrid.domain.settlements import SettlementStatus, SettlementTransactionType
from paygrid.schemas.common import RequestModel, unix

AMOUNTS = "Minor units; `gross - fee = net` exactly."


class Settlement(BaseModel):
    id: str = Field(examples=["stl_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"])
    object: Literal["settlement"] = "settlement"
    connector_account: str
    provider: str = Field(examples=["stripe", "paystack"])
    provider_reference: str = Field(
        description="The provider's id: a Stripe payout (`po_...`), a Paystack settlement."
    )
    status: SettlementStatus
    currency: str
    gross: int = Field(description=f"What customers paid, less refunds. {AMOUNTS}")
    fee: int = Field(description="What the provider kept.")
    net: int = Field(description="What reaches (or reached) the bank account.")
    transaction_count: int
    period_start: int | None = Field(description="The earliest transaction (Unix time).")
    period_end: int | None = Field(description="The latest transaction (Unix time).")
    arrival_date: int = Field(description="When the money is expected at the bank (Unix time).")
    livemode: bool
    created: int = Field(description="When the provider created the payout (Unix time).")

    @classmethod
    def from_row(cls, row: SettlementRow) -> Settlement:
        return cls(
            id=row.id,
            connector_account=row.connector_account_id,
            provider=row.provider,
            provider_reference=row.provider_settlement_id,
            status=row.status,
            currency=row.currency,
            gross=row.gross,
            fee=row.fee,
            net=row.net,
            transaction_count=row.transaction_count,
            period_start=unix(row.period_start),
            period_end=unix(row.period_end),
            arrival_date=unix(row.arrival_date) or 0,
            livemode=row.livemode,
            created=unix(row.provider_created_at) or 0,
        )


class SettlementTransaction(BaseModel):
    id: str = Field(examples=["stxn_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"])
    object: Literal["settlement_transaction"] = "settlement_transaction"
    settlement: str
    type: SettlementTransactionType
    currency: str
    gross: int = Field(description=f"Signed as in the balance: a refund is negative. {AMOUNTS}")
    fee: int
    net: int
    payment: str | None = Field(description="The paygrid payment it settles, when known.")
    refund: str | None = Field(description="The paygrid refund it settles, when known.")
    provider_reference: str = Field(description="The provider's id (Stripe's `txn_...`).")
    provider_source: str | None = Field(
        description="What moved the money at the provider (`ch_...`, `re_...`, a reference)."
    )
    livemode: bool
    created: int = Field(description="When the provider recorded it (Unix time).")

    @classmethod
    def from_row(cls, row: SettlementTransactionRow) -> SettlementTransaction:
        return cls(
            id=row.id,
            settlement=row.settlement_id,
            type=row.type,
            currency=row.currency,
            gross=row.gross,
            fee=row.fee,
            net=row.net,
            payment=row.payment_id,
            refund=row.refund_id,
            provider_reference=row.provider_transaction_id,
            provider_source=row.provider_source_id,
            livemode=row.livemode,
            created=unix(row.provider_created_at) or 0,
        )


class SettlementImportCreate(RequestModel):
    connector_account: str = Field(
        min_length=1, max_length=64, description="A Stripe or Paystack `ca_...` of yours."
    )


class SettlementImport(BaseModel):
    object: Literal["settlement_import"] = "settlement_import"
    connector_account: str
    status: Literal["queued", "already_queued"] = Field(
        description="`already_queued`: an import of this account is queued or running."
    )
    livemode: bool
