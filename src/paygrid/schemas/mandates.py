"""Mandates: the customer's acceptance of later off-session charges of a saved method."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, model_validator

from paygrid.schemas.common import FreeText, RequestModel, unix

if TYPE_CHECKING:
    from paygrid.db.mandates import MandateRow


class OnlineAcceptance(RequestModel):
    ip_address: StrictStr = Field(
        min_length=1, max_length=45, description="The customer's IP address when accepting."
    )
    user_agent: FreeText = Field(
        min_length=1, max_length=1000, description="The customer's browser user agent."
    )


class CustomerAcceptanceInput(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"type": {"const": "online"}}},
            "then": {"required": ["online"], "properties": {"online": {"type": "object"}}},
            "else": {"properties": {"online": {"type": "null"}}},
        }
    )

    type: Literal["online", "offline"]
    online: OnlineAcceptance | None = None

    @model_validator(mode="after")
    def _online_details(self) -> CustomerAcceptanceInput:
        if (self.type == "online") != (self.online is not None):
            raise ValueError("online acceptance takes `online` (ip_address, user_agent)")
        return self


class MandateData(RequestModel):
    """How the customer accepted later charges (Stripe's `mandate_data`)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "customer_acceptance": {
                        "type": "online",
                        "online": {"ip_address": "203.0.113.7", "user_agent": "Mozilla/5.0"},
                    }
                }
            ]
        }
    )

    customer_acceptance: CustomerAcceptanceInput


class OnlineDetails(BaseModel):
    ip_address: str | None
    user_agent: str | None


class CustomerAcceptance(BaseModel):
    type: Literal["online", "offline"]
    accepted_at: int
    online: OnlineDetails | None


class Mandate(BaseModel):
    id: str = Field(examples=["mandate_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"])
    object: Literal["mandate"] = "mandate"
    type: Literal["multi_use"] = "multi_use"
    status: Literal["active"] = "active"
    customer: str
    payment_method: str
    customer_acceptance: CustomerAcceptance
    livemode: bool
    created: int

    @classmethod
    def from_row(cls, row: MandateRow) -> Mandate:
        online = None
        if row.acceptance_type == "online":
            online = OnlineDetails(ip_address=row.ip_address, user_agent=row.user_agent)
        return cls(
            id=row.id,
            customer=row.customer_id,
            payment_method=row.payment_method_id,
            customer_acceptance=CustomerAcceptance(
                type="online" if row.acceptance_type == "online" else "offline",
                accepted_at=unix(row.accepted_at) or 0,
                online=online,
            ),
            livemode=row.livemode,
            created=unix(row.created_at) or 0,
        )
