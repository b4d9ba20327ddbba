"""Checkout session objects: a hosted payment page for one amount."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from paygrid.domain.checkout import CheckoutSessionStatus
from paygrid.schemas.common import (
    CURRENCY_SCHEMA,
    HTTP_URL_SCHEMA,
    Email,
    FreeText,
    Metadata,
    PositiveAmount,
    RequestModel,
    not_both,
    unix,
)
from paygrid.schemas.connector_accounts import PaymentMethodType

if TYPE_CHECKING:
    from paygrid.db.checkout_sessions import CheckoutSessionRow

CheckoutStatus = Literal["open", "complete", "expired"]


class CheckoutSessionCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            **not_both("customer", "customer_email"),
            "examples": [
                {
                    "amount": 2000,
                    "currency": "USD",
                    "customer_email": "ada@example.com",
                    "description": "1 x Paygrid mug",
                    "success_url": "https://shop.example.com/thanks",
                    "cancel_url": "https://shop.example.com/cart",
                    "metadata": {"order_number": "1043"},
                }
            ],
        }
    )

    amount: PositiveAmount
    currency: str = Field(
        min_length=1,
        max_length=16,
        description="ISO 4217 code of a supported currency, in either case.",
        examples=["USD"],
        json_schema_extra=CURRENCY_SCHEMA,
    )
    customer: str | None = Field(
        default=None,
        description="A `cus_...` whose email the payment's receipt goes to. Not with "
        "`customer_email`.",
    )
    customer_email: Email | None = Field(
        default=None,
        max_length=254,
        description="The customer's email, when there is no customer object. Providers' "
        "hosted pages (Paystack) need one; without it the page asks the customer.",
    )
    success_url: str = Field(
        min_length=1,
        max_length=2048,
        description="Where the customer goes once paid; `?session_id=cs_...` is appended.",
        examples=["https://shop.example.com/thanks"],
        json_schema_extra=HTTP_URL_SCHEMA,
    )
    cancel_url: str = Field(
        min_length=1,
        max_length=2048,
        description="Where the page's cancel link leads.",
        examples=["https://shop.example.com/cart"],
        json_schema_extra=HTTP_URL_SCHEMA,
    )
    description: FreeText | None = Field(
        default=None, max_length=1000, description="Shown on the page, and on the payment."
    )
    payment_method_types: list[PaymentMethodType] | None = Field(
        default=None,
        min_length=1,
        max_length=6,
        description="What the page offers. `card`: the page's card form. Anything else "
        "(Paystack channels such as `bank_transfer`, `ussd`): a button that sends the "
        "customer to the provider's hosted page. Default: card.",
    )
    expires_at: StrictInt | None = Field(
        default=None,
        description="Unix time at which the session stops taking payments: 30 minutes to 24 "
        "hours from now. Default: 24 hours from now.",
    )
    metadata: Metadata = Field(default_factory=dict)


class CheckoutSession(BaseModel):
    id: str = Field(examples=["cs_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"])
    object: Literal["checkout_session"] = "checkout_session"
    url: str = Field(
        description="The hosted page: redirect the customer here, or open it with checkout.js.",
        examples=["https://pay.example.com/checkout/cs_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"],
    )
    status: CheckoutStatus = Field(
        description="`open` takes payments; `complete` was paid (see `payment`); `expired` "
        "no longer takes payments."
    )
    payment_status: Literal["unpaid", "paid"]
    amount: int
    currency: str
    customer: str | None
    customer_email: str | None
    description: str | None
    payment_method_types: list[str]
    success_url: str
    cancel_url: str
    payment: str | None = Field(
        description="The `pay_...` the page created (set at the first attempt to pay)."
    )
    metadata: dict[str, str]
    livemode: bool
    created: int
    expires_at: int
    completed_at: int | None

    @classmethod
    def from_row(cls, row: CheckoutSessionRow, base_url: str) -> CheckoutSession:
        return cls(
            id=row.id,
            url=f"{base_url}/checkout/{row.id}",
            status=row.status,
            payment_status="paid" if row.status is CheckoutSessionStatus.COMPLETE else "unpaid",
            amount=row.amount,
            currency=row.currency,
            customer=row.customer_id,
            customer_email=row.customer_email,
            description=row.description,
            payment_method_types=[str(t) for t in row.payment_method_types],
            success_url=row.success_url,
            cancel_url=row.cancel_url,
            payment=row.payment_id,
            metadata=row.metadata,
            livemode=row.livemode,
            created=unix(row.created_at) or 0,
            expires_at=unix(row.expires_at) or 0,
            completed_at=unix(row.completed_at),
        )
