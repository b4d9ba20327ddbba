"""Invoice and invoice item objects, modelled on Stripe's."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from paygrid.domain.invoices import BillingReason, CollectionMethod, InvoiceStatus, LineType
from paygrid.schemas.common import (
    CURRENCY_SCHEMA,
    FreeText,
    Metadata,
    PositiveAmount,
    RequestModel,
    unix,
)

if TYPE_CHECKING:
    from paygrid.db.invoices import InvoiceItemRow, InvoiceLineRow, InvoiceRow

MAX_QUANTITY = 1_000_000
MAX_DAYS_UNTIL_DUE = 3650
DEFAULT_DAYS_UNTIL_DUE = 30

_NULL: dict[str, Any] = {"type": "null"}


class InvoiceItemCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            # Either an amount in a currency, or a catalog price (times a quantity).
            "anyOf": [
                {
                    "required": ["amount", "currency"],
                    "properties": {
                        "amount": {"type": "integer"},
                        "currency": {"type": "string"},
                        "price": _NULL,
                        "quantity": _NULL,
                    },
                },
                {
                    "required": ["price"],
                    "properties": {"price": {"type": "string"}, "amount": _NULL, "currency": _NULL},
                },
            ],
            "examples": [
                {
                    "customer": "cus_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0",
                    "amount": 2500,
                    "currency": "USD",
                    "description": "Setup fee",
                }
            ],
        }
    )

    customer: str = Field(min_length=1, max_length=255, examples=["cus_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"])
    amount: PositiveAmount | None = Field(
        default=None, description="With `currency`; not with `price`."
    )
    currency: str | None = Field(
        default=None,
        min_length=1,
        max_length=16,
        description="ISO 4217 code, in either case; with `amount`.",
        json_schema_extra=CURRENCY_SCHEMA,
    )
    price: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="An active one-time `price_...` of the catalog; not with `amount`.",
    )
    quantity: StrictInt | None = Field(
        default=None, ge=1, le=MAX_QUANTITY, description="With `price` only; default 1."
    )
    description: FreeText | None = Field(default=None, max_length=1000)
    metadata: Metadata = Field(default_factory=dict)


class Period(BaseModel):
    start: int
    end: int


class InvoiceItem(BaseModel):
    id: str = Field(examples=["ii_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"])
    object: Literal["invoiceitem"] = "invoiceitem"
    customer: str
    invoice: str | None = Field(description="The invoice holding it; null while pending.")
    amount: int
    currency: str
    price: str | None
    quantity: int
    unit_amount: int
    description: str | None
    metadata: dict[str, str]
    period: Period
    proration: bool
    livemode: bool
    date: int

    @classmethod
    def from_row(cls, row: InvoiceItemRow) -> InvoiceItem:
        return cls(
            id=row.id,
            customer=row.customer_id,
            invoice=row.invoice_id,
            amount=row.amount,
            currency=row.currency,
            price=row.price_id,
            quantity=row.quantity,
            unit_amount=row.unit_amount,
            description=row.description,
            metadata=row.metadata,
            period=Period(start=unix(row.period_start) or 0, end=unix(row.period_end) or 0),
            proration=row.proration,
            livemode=row.livemode,
            date=unix(row.created_at) or 0,
        )


class InvoiceCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            # days_until_due only for invoices sent to the customer.
            "if": {
                "required": ["collection_method"],
                "properties": {"collection_method": {"const": "send_invoice"}},
            },
            "else": {"properties": {"days_until_due": _NULL}},
            "examples": [
                {
                    "customer": "cus_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0",
                    "collection_method": "send_invoice",
                    "days_until_due": 14,
                }
            ],
        }
    )

    customer: str = Field(min_length=1, max_length=255, examples=["cus_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"])
    currency: str | None = Field(
        default=None,
        min_length=1,
        max_length=16,
        description="Collect the pending items in this currency; default: the currency of "
        "the oldest pending item. Items in other currencies stay pending.",
        json_schema_extra=CURRENCY_SCHEMA,
    )
    collection_method: Literal["charge_automatically", "send_invoice"] = "charge_automatically"
    days_until_due: StrictInt | None = Field(
        default=None,
        ge=0,
        le=MAX_DAYS_UNTIL_DUE,
        description=f"`send_invoice` only; default {DEFAULT_DAYS_UNTIL_DUE}. The due date is "
        "counted from finalization.",
    )
    auto_advance: StrictBool = Field(
        default=False,
        description="Stored and shown; automatic finalization and collection come with the "
        "billing schedule.",
    )
    default_payment_method: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="The customer's saved method `/pay` charges when it is given none.",
    )
    description: FreeText | None = Field(default=None, max_length=1500)
    metadata: Metadata = Field(default_factory=dict)


class InvoicePay(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"payment_method": "pm_card_visa"}]})

    payment_method: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="Charge this method saved to the invoice's customer (or, in test mode, a "
        "test id such as `pm_card_visa`) instead of the invoice's default.",
    )


class InvoiceLine(BaseModel):
    id: str = Field(examples=["il_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"])
    object: Literal["line_item"] = "line_item"
    type: LineType
    invoice_item: str | None
    subscription: str | None
    subscription_item: str | None
    price: str | None
    description: str | None
    amount: int
    currency: str
    quantity: int
    unit_amount: int | None
    proration: bool
    period: Period
    metadata: dict[str, str]

    @classmethod
    def from_row(cls, row: InvoiceLineRow) -> InvoiceLine:
        return cls(
            id=row.id,
            type=row.type,
            invoice_item=row.invoice_item_id,
            subscription=row.subscription_id,
            subscription_item=row.subscription_item_id,
            price=row.price_id,
            description=row.description,
            amount=row.amount,
            currency=row.currency,
            quantity=row.quantity,
            unit_amount=row.unit_amount,
            proration=row.proration,
            period=Period(start=unix(row.period_start) or 0, end=unix(row.period_end) or 0),
            metadata=row.metadata,
        )


class InvoiceLines(BaseModel):
    object: Literal["list"] = "list"
    data: list[InvoiceLine]
    has_more: Literal[False] = False
    total_count: int


class StatusTransitions(BaseModel):
    finalized_at: int | None
    paid_at: int | None
    voided_at: int | None
    marked_uncollectible_at: int | None


class Invoice(BaseModel):
    id: str = Field(examples=["in_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"])
    object: Literal["invoice"] = "invoice"
    customer: str
    status: InvoiceStatus
    number: str | None = Field(description="Given at finalization: `{prefix}-{0001}`.")
    currency: str
    collection_method: CollectionMethod
    days_until_due: int | None
    due_date: int | None
    auto_advance: bool
    description: str | None
    metadata: dict[str, str]
    subtotal: int
    total: int = Field(description="The sum of the lines, exactly.")
    amount_due: int
    amount_paid: int
    amount_remaining: int
    attempt_count: int
    attempted: bool
    payment: str | None = Field(description="The payment of the latest attempt.")
    default_payment_method: str | None
    last_payment_error: dict[str, Any] | None
    billing_reason: BillingReason
    subscription: str | None
    period_start: int | None
    period_end: int | None
    lines: InvoiceLines
    status_transitions: StatusTransitions
    footer: str | None = Field(
        default=None,
        description="Printed on the invoice: the billing settings' `invoices.footer` when it "
        "was finalized.",
    )
    hosted_invoice_url: str | None = Field(
        description="The page where the customer sees and pays the invoice, "
        "`{public url}/i/{token}`; null for drafts."
    )
    invoice_pdf: str | None = Field(
        description="The invoice's PDF (`{hosted_invoice_url}/pdf`); null for drafts."
    )
    next_payment_attempt: int | None = Field(
        default=None,
        description="When the next automatic payment attempt is due (dunning); null when "
        "none will be made.",
    )
    livemode: bool
    created: int

    @classmethod
    def from_row(cls, row: InvoiceRow, lines: Sequence[InvoiceLineRow]) -> Invoice:
        return cls(
            id=row.id,
            customer=row.customer_id,
            status=row.status,
            number=row.number,
            currency=row.currency,
            collection_method=row.collection_method,
            days_until_due=row.days_until_due,
            due_date=unix(row.due_date),
            auto_advance=row.auto_advance,
            description=row.description,
            metadata=row.metadata,
            subtotal=row.subtotal,
            total=row.total,
            amount_due=row.amount_due,
            amount_paid=row.amount_paid,
            amount_remaining=row.amount_remaining,
            attempt_count=row.attempt_count,
            attempted=row.attempt_count > 0 or row.payment_id is not None,
            payment=row.payment_id,
            default_payment_method=row.default_payment_method_id,
            last_payment_error=row.last_payment_error,
            billing_reason=row.billing_reason,
            subscription=row.subscription_id,
            period_start=unix(row.period_start),
            period_end=unix(row.period_end),
            lines=InvoiceLines(
                data=[InvoiceLine.from_row(line) for line in lines], total_count=len(lines)
            ),
            status_transitions=StatusTransitions(
                finalized_at=unix(row.finalized_at),
                paid_at=unix(row.paid_at),
                voided_at=unix(row.voided_at),
                marked_uncollectible_at=unix(row.marked_uncollectible_at),
            ),
            footer=row.footer,
            hosted_invoice_url=row.hosted_invoice_url,
            invoice_pdf=None if row.hosted_invoice_url is None else f"{row.hosted_invoice_url}/pdf",
            next_payment_attempt=(
                unix(row.next_payment_attempt) if row.status is InvoiceStatus.OPEN else None
            ),
            livemode=row.livemode,
            created=unix(row.created_at) or 0,
        )
