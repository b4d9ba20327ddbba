"""Refund objects."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from paygrid.schemas.common import Metadata, PositiveAmount, RequestModel, unix

if TYPE_CHECKING:
    from paygrid.db.refunds import RefundRow


class RefundCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "payment": "pay_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0",
                    "amount": 500,
                    "reason": "requested_by_customer",
                }
            ]
        }
    )

    payment: str = Field(
        description="The id of the payment to refund.", examples=["pay_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"]
    )
    amount: PositiveAmount | None = Field(
        default=None, description="Minor units; defaults to everything not yet refunded."
    )
    reason: Literal["duplicate", "fraudulent", "requested_by_customer"] | None = None
    metadata: Metadata = Field(default_factory=dict)


class Refund(BaseModel):
    id: str = Field(examples=["re_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"])
    object: Literal["refund"] = "refund"
    payment: str
    amount: int
    fee: int | None = Field(
        default=None,
        description="Signed as in the provider's balance: the fee it returned is negative; "
        "null until the provider's settlement data says.",
    )
    net: int | None = Field(
        default=None,
        description="What the refund took from your balance (negative); null until known.",
    )
    currency: str
    status: Literal["pending", "succeeded", "failed"]
    reason: str | None
    failure_reason: str | None
    metadata: dict[str, str]
    livemode: bool
    created: int

    @classmethod
    def from_row(cls, row: RefundRow) -> Refund:
        return cls(
            id=row.id,
            payment=row.payment_id,
            amount=row.amount,
            fee=row.fee,
            net=row.net,
            currency=row.currency,
            status=row.status,
            reason=row.reason,
            failure_reason=row.failure_reason,
            metadata=row.metadata,
            livemode=row.livemode,
            created=unix(row.created_at) or 0,
        )
