"""Payment objects, modelled on Stripe's PaymentIntent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

from paygrid.domain.payments import PaymentStatus
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
from paygrid.schemas.mandates import MandateData
from paygrid.schemas.payment_methods import PaymentMethodData

if TYPE_CHECKING:
    from paygrid.db.payments import AttemptRow, PaymentRow

CaptureMethod = Literal["automatic", "manual"]


class PaymentCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            **not_both("payment_method", "payment_method_data"),
            # Confirming needs something to pay with: a method, card data, or the method
            # types for the provider's hosted page.
            "if": {"required": ["confirm"], "properties": {"confirm": {"const": True}}},
            "then": {
                "anyOf": [
                    {"required": [field], "properties": {field: {"not": {"type": "null"}}}}
                    for field in ("payment_method", "payment_method_data", "payment_method_types")
                ]
            },
            # What _saved_methods enforces (docs/billing.md): an off-session charge is a
            # confirmed payment of a customer's saved method, and saving needs a customer.
            "allOf": [
                {
                    "if": {
                        "required": ["off_session"],
                        "properties": {"off_session": {"const": True}},
                    },
                    "then": {
                        "required": ["confirm", "customer", "payment_method"],
                        "properties": {
                            "confirm": {"const": True},
                            "customer": {"type": "string"},
                            "payment_method": {"type": "string"},
                            "setup_future_usage": {"type": "null"},
                        },
                    },
                },
                {
                    "if": {
                        "required": ["setup_future_usage"],
                        "properties": {"setup_future_usage": {"type": "string"}},
                    },
                    "then": {
                        "required": ["customer"],
                        "properties": {"customer": {"type": "string"}},
                    },
                },
                {
                    "if": {
                        "required": ["mandate_data"],
                        "properties": {"mandate_data": {"type": "object"}},
                    },
                    "then": {
                        "required": ["setup_future_usage"],
                        "properties": {"setup_future_usage": {"type": "string"}},
                    },
                },
            ],
            "examples": [
                {
                    "amount": 2000,
                    "currency": "USD",
                    "confirm": True,
                    "payment_method_data": {
                        "type": "card",
                        "card": {
                            "number": "4242424242424242",
                            "exp_month": 12,
                            "exp_year": 2030,
                            "cvc": "123",
                        },
                    },
                    # No `reference`: it is unique per merchant, so a fixed one makes the
                    # example answer 200 once and 409 after (stateful fuzz replays it).
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
    capture_method: CaptureMethod = Field(
        default="automatic",
        description="`manual` authorizes only; capture later with `/capture`.",
    )
    confirm: StrictBool = Field(default=False, description="Confirm immediately.")
    payment_method: str | None = Field(
        default=None,
        description="A saved `pm_...` id, or a test-mode magic id such as `pm_card_visa`.",
    )
    payment_method_data: PaymentMethodData | None = Field(
        default=None, description="Test mode only: raw card data for the simulator's tokenizer."
    )
    customer: str | None = Field(default=None, examples=["cus_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"])
    payment_method_types: list[PaymentMethodType] | None = Field(
        default=None,
        min_length=1,
        max_length=6,
        description="How the customer may pay when no payment method is given: the "
        "provider's hosted page offers these channels (Paystack: card, bank, ussd, "
        "mobile_money, bank_transfer, qr). Default: card.",
    )
    receipt_email: Email | None = Field(
        default=None,
        max_length=254,
        description="The customer's email; Paystack needs one (the customer's is used when "
        "absent).",
    )
    description: FreeText | None = Field(default=None, max_length=1000)
    return_url: str | None = Field(
        default=None,
        max_length=2048,
        description="Where the customer returns after a redirect (3-D Secure): an absolute "
        "https URL (http too in test mode).",
        examples=["https://shop.example.com/checkout/done"],
        json_schema_extra=HTTP_URL_SCHEMA,
    )
    order_id: str | None = Field(default=None, max_length=255)
    reference: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="Your unique reference for this payment; generated when absent.",
    )
    metadata: Metadata = Field(default_factory=dict)
    setup_future_usage: Literal["off_session"] | None = Field(
        default=None,
        description="Save the payment method to `customer` for later off-session charges "
        "once this payment is authenticated and succeeds, with a mandate (docs/billing.md). "
        "Needs `customer`.",
    )
    off_session: StrictBool = Field(
        default=False,
        description="A merchant-initiated charge of `customer`'s saved `payment_method` "
        "while the customer is away. Needs `confirm`. A card that needs authentication "
        "fails with `authentication_required` and the payment waits in `requires_action`.",
    )
    mandate_data: MandateData | None = Field(
        default=None,
        description="With `setup_future_usage`: how the customer accepted later charges. "
        "Without it, the acceptance is recorded as offline.",
    )

    @model_validator(mode="after")
    def _saved_methods(self) -> PaymentCreate:
        if self.off_session and not (self.confirm and self.customer and self.payment_method):
            raise ValueError("off_session needs confirm, customer and a saved payment_method")
        if self.off_session and self.setup_future_usage is not None:
            raise ValueError("an off_session payment cannot also set up future usage")
        if self.setup_future_usage is not None and self.customer is None:
            raise ValueError("setup_future_usage needs the customer to save the method to")
        if self.mandate_data is not None and self.setup_future_usage is None:
            raise ValueError("mandate_data is only taken with setup_future_usage")
        return self


class PaymentConfirm(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            **not_both("payment_method", "payment_method_data"),
            "examples": [
                {"payment_method": "pm_card_visa", "return_url": "https://shop.example.com/done"}
            ],
        }
    )

    payment_method: str | None = None
    payment_method_data: PaymentMethodData | None = None
    return_url: str | None = Field(default=None, max_length=2048, json_schema_extra=HTTP_URL_SCHEMA)


class PaymentCapture(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"amount_to_capture": 1500}]})

    amount_to_capture: StrictInt | None = Field(
        default=None,
        gt=0,
        description="At most `amount_capturable`; defaults to all of it. The rest is released.",
    )


class PaymentCancel(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"cancellation_reason": "requested_by_customer"}]}
    )

    cancellation_reason: (
        Literal["duplicate", "fraudulent", "requested_by_customer", "abandoned"] | None
    ) = None


class Attempt(BaseModel):
    """One call to a connector on behalf of this payment."""

    id: str
    object: Literal["payment_attempt"] = "payment_attempt"
    operation: Literal["authorize", "capture", "void", "refund"]
    connector: str = Field(examples=["simulator"])
    connector_account: str | None = Field(
        description="The connector account called; null for the built-in test simulator."
    )
    status: str = Field(
        description="pending, authorized, captured, requires_action, declined, unknown, "
        "unreachable, succeeded or failed"
    )
    amount: int
    provider_reference: str | None = Field(
        description="The provider's id for this call (a Stripe PaymentIntent or refund, a "
        "Paystack transaction reference or refund id), for reconciliation."
    )
    error_code: str | None
    decline_code: str | None
    error_message: str | None
    latency_ms: int | None
    created: int
    completed: int | None

    @classmethod
    def from_row(cls, row: AttemptRow) -> Attempt:
        return cls(
            id=row.id,
            operation=row.operation.value,
            connector=row.connector,
            connector_account=row.connector_account_id,
            status=row.status.value,
            amount=row.amount,
            provider_reference=row.provider_reference,
            error_code=row.error_code,
            decline_code=row.decline_code,
            error_message=row.error_message,
            latency_ms=row.latency_ms,
            created=unix(row.created_at) or 0,
            completed=unix(row.completed_at),
        )


class PaymentError(BaseModel):
    type: Literal["card_error", "api_error"]
    code: str = Field(examples=["card_declined"])
    decline_code: str | None = None
    message: str


class RedirectToUrl(BaseModel):
    url: str | None = Field(
        description="Send the customer here. Null only when the provider gave no URL (a "
        "fake Stripe in test mode, which authenticates through its own API)."
    )
    return_url: str | None


class NextAction(BaseModel):
    type: Literal["redirect_to_url"] = "redirect_to_url"
    redirect_to_url: RedirectToUrl


class Payment(BaseModel):
    id: str = Field(examples=["pay_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"])
    object: Literal["payment"] = "payment"
    amount: int
    amount_capturable: int
    amount_received: int
    amount_refunded: int = Field(description="Includes refunds still pending at the provider.")
    fee: int | None = Field(
        default=None,
        description="The provider's fee in minor units, once its settlement data says "
        "(event `payment.fee_settled`); null until then.",
    )
    net: int | None = Field(
        default=None,
        description="What the provider pays you: `amount - fee`; null until known.",
    )
    currency: str
    status: PaymentStatus
    capture_method: CaptureMethod
    customer: str | None
    payment_method: str | None
    connector: str | None
    connector_account: str | None
    payment_method_types: list[str]
    receipt_email: str | None
    description: str | None
    reference: str
    order_id: str | None
    return_url: str | None
    metadata: dict[str, str]
    last_payment_error: PaymentError | None
    next_action: NextAction | None
    cancellation_reason: str | None
    canceled_at: int | None
    attempts: list[Attempt]
    setup_future_usage: Literal["off_session"] | None = None
    off_session: bool = False
    livemode: bool
    created: int

    @classmethod
    def from_row(cls, row: PaymentRow, attempts: Sequence[AttemptRow]) -> Payment:
        return cls(
            id=row.id,
            amount=row.amount,
            amount_capturable=row.amount_capturable,
            amount_received=row.amount_received,
            amount_refunded=row.amount_refunded,
            fee=row.fee,
            net=row.net,
            currency=row.currency,
            status=row.status,
            capture_method=row.capture_method.value,
            customer=row.customer_id,
            payment_method=row.payment_method_id,
            connector=row.connector,
            connector_account=row.connector_account_id,
            payment_method_types=list(row.payment_method_types),
            receipt_email=row.receipt_email,
            description=row.description,
            reference=row.reference,
            order_id=row.order_id,
            return_url=row.return_url,
            metadata=row.metadata,
            last_payment_error=_optional(PaymentError, row.last_payment_error),
            next_action=_optional(NextAction, row.next_action),
            cancellation_reason=row.cancellation_reason,
            canceled_at=unix(row.canceled_at),
            attempts=[Attempt.from_row(a) for a in attempts],
            setup_future_usage="off_session" if row.setup_future_usage else None,
            off_session=row.off_session,
            livemode=row.livemode,
            created=unix(row.created_at) or 0,
        )


def _optional(model: type[BaseModel], value: dict[str, Any] | None) -> Any:
    return None if value is None else model.model_validate(value)
