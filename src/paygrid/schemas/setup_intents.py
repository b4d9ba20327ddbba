"""Setup intents (Stripe's SetupIntent): save a method for later off-session charges
without charging it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from paygrid.domain.setup_intents import SetupIntentStatus
from paygrid.schemas.common import HTTP_URL_SCHEMA, FreeText, Metadata, RequestModel, unix
from paygrid.schemas.mandates import MandateData
from paygrid.schemas.payments import NextAction, PaymentError

if TYPE_CHECKING:
    from paygrid.db.setup_intents import SetupIntentRow

_RETURN_URL = Field(
    default=None,
    max_length=2048,
    description="Where the customer returns after 3-D Secure: an absolute https URL (http "
    "too in test mode).",
    json_schema_extra=HTTP_URL_SCHEMA,
)


class SetupIntentCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            # Confirming needs a method to set up.
            "if": {"required": ["confirm"], "properties": {"confirm": {"const": True}}},
            "then": {
                "required": ["payment_method"],
                "properties": {"payment_method": {"type": "string"}},
            },
            "examples": [
                {
                    "customer": "cus_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0",
                    "payment_method": "pm_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0",
                    "confirm": True,
                }
            ],
        }
    )

    customer: str | None = Field(
        default=None,
        max_length=64,
        description="The customer the method is saved to once the setup succeeds.",
    )
    payment_method: str | None = Field(
        default=None, max_length=64, description="A `pm_...` of this customer, or unattached."
    )
    confirm: StrictBool = Field(default=False, description="Confirm at once.")
    usage: Literal["off_session", "on_session"] = "off_session"
    description: FreeText | None = Field(default=None, max_length=1000)
    metadata: Metadata = Field(default_factory=dict)
    return_url: str | None = _RETURN_URL
    mandate_data: MandateData | None = None


class SetupIntentConfirm(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"payment_method": "pm_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"}]}
    )

    payment_method: str | None = Field(default=None, max_length=64)
    return_url: str | None = _RETURN_URL
    mandate_data: MandateData | None = None


class SetupIntentCancel(RequestModel):
    cancellation_reason: Literal["abandoned", "duplicate", "requested_by_customer"] | None = None


class SetupIntent(BaseModel):
    id: str = Field(examples=["seti_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"])
    object: Literal["setup_intent"] = "setup_intent"
    status: SetupIntentStatus
    customer: str | None
    payment_method: str | None
    usage: Literal["off_session", "on_session"]
    description: str | None
    metadata: dict[str, str]
    connector: str | None
    connector_account: str | None
    last_setup_error: PaymentError | None
    next_action: NextAction | None
    mandate: str | None = Field(description="The mandate recorded when it succeeded.")
    cancellation_reason: str | None
    return_url: str | None
    livemode: bool
    created: int

    @classmethod
    def from_row(cls, row: SetupIntentRow) -> SetupIntent:
        return cls(
            id=row.id,
            status=row.status,
            customer=row.customer_id,
            payment_method=row.payment_method_id,
            usage="on_session" if row.usage == "on_session" else "off_session",
            description=row.description,
            metadata=row.metadata,
            connector=row.connector,
            connector_account=row.connector_account_id,
            last_setup_error=_optional(PaymentError, row.last_setup_error),
            next_action=_optional(NextAction, row.next_action),
            mandate=row.mandate_id,
            cancellation_reason=row.cancellation_reason,
            return_url=row.return_url,
            livemode=row.livemode,
            created=unix(row.created_at) or 0,
        )


def _optional(model: type[BaseModel], value: dict[str, Any] | None) -> Any:
    return None if value is None else model.model_validate(value)
