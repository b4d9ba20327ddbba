"""Payment method objects and the card data accepted in test mode."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, model_validator

from paygrid.schemas.common import Metadata, RequestModel, unix

if TYPE_CHECKING:
    from paygrid.db.payment_methods import PaymentMethodRow


class CardInput(RequestModel):
    """Raw card data. Accepted only in test mode, where it goes straight to the simulator's
    tokenizer; paygrid never stores or logs it."""

    number: StrictStr = Field(max_length=23, examples=["4242424242424242"])
    # The bounds are what the fields can hold (two and four digits): a value outside them is
    # a malformed request (400), while a well-formed but impossible or past date is the
    # tokenizer's card error (402 invalid_expiry_month, expired_card, ...), as at Stripe.
    exp_month: StrictInt = Field(ge=0, le=99, examples=[12])
    exp_year: StrictInt = Field(ge=0, le=9999, examples=[2030])
    cvc: StrictStr = Field(max_length=4, examples=["123"])

    def __repr__(self) -> str:
        return "CardInput(<redacted>)"

    __str__ = __repr__


class ProviderToken(RequestModel):
    connector_account: StrictStr = Field(
        max_length=64, description="The connector account the token belongs to."
    )
    token: StrictStr = Field(
        min_length=1,
        max_length=255,
        description="The provider's payment method id, e.g. a Stripe `pm_...` from Stripe.js.",
        examples=["pm_1Q0PsIJvEtkwdCNYMSaVuRz6"],
    )


class PaymentMethodData(RequestModel):
    """Either raw card data (`type: card`, test mode only) or a token your page got from
    the provider's own fields (`type: provider_token`, any mode; Stripe)."""

    # What _one_kind enforces: `type` names the one member that is given.
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {
                    "properties": {
                        "type": {"const": kind},
                        kind: {"type": "object"},
                        other: {"type": "null"},
                    },
                    "required": ["type", kind],
                }
                for kind, other in (("card", "provider_token"), ("provider_token", "card"))
            ]
        }
    )

    type: Literal["card", "provider_token"]
    card: CardInput | None = None
    provider_token: ProviderToken | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> PaymentMethodData:
        if self.type == "card" and (self.card is None or self.provider_token is not None):
            raise ValueError("type card takes `card` (and no `provider_token`)")
        if self.type == "provider_token" and (self.provider_token is None or self.card is not None):
            raise ValueError("type provider_token takes `provider_token` (and no `card`)")
        return self


class PaymentMethodCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "card",
                    "card": {
                        "number": "4242424242424242",
                        "exp_month": 12,
                        "exp_year": 2030,
                        "cvc": "123",
                    },
                }
            ]
        }
    )

    type: Literal["card"]
    card: CardInput
    customer: str | None = Field(
        default=None,
        description="Attach to this customer.",
        examples=["cus_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"],
    )
    metadata: Metadata = Field(default_factory=dict)


class PaymentMethodAttach(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"customer": "cus_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"}]}
    )

    customer: str


class CardSummary(BaseModel):
    brand: str = Field(examples=["visa"])
    last4: str = Field(examples=["4242"])
    exp_month: int
    exp_year: int


class PaymentMethod(BaseModel):
    id: str = Field(examples=["pm_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"])
    object: Literal["payment_method"] = "payment_method"
    type: Literal["card"] = "card"
    card: CardSummary
    customer: str | None
    mandate: str | None = Field(
        default=None,
        description="The mandate (`GET /v1/mandates/{id}`) under which it is charged "
        "off-session, once set up.",
    )
    metadata: dict[str, str]
    livemode: bool
    created: int

    @classmethod
    def from_row(cls, row: PaymentMethodRow) -> PaymentMethod:
        return cls(
            id=row.id,
            card=CardSummary(
                brand=row.card_brand,
                last4=row.card_last4,
                exp_month=row.card_exp_month,
                exp_year=row.card_exp_year,
            ),
            customer=row.customer_id,
            mandate=row.mandate_id,
            metadata=row.metadata,
            livemode=row.livemode,
            created=unix(row.created_at) or 0,
        )
