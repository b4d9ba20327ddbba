"""The account object (``/v1/account``): the authenticated merchant, as Stripe's account
object shows an account to its own keys."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from paygrid.schemas.common import RequestModel


class Account(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "mer_01JD4Q7R3W0000000000000000",
                    "object": "account",
                    "name": "Acme Lagos",
                    "timezone": "Africa/Lagos",
                    "created": 1796083200,
                    "livemode": False,
                }
            ]
        }
    )

    id: str = Field(description="The merchant's id (`mer_...`).")
    object: Literal["account"] = "account"
    name: str
    timezone: str = Field(
        description="IANA time zone of the merchant's day: the daily reconciliation run is "
        "due at 06:00 in it. `UTC` until set."
    )
    created: int = Field(description="Unix time the merchant was created.")
    livemode: bool = Field(description="The mode of the key that asked.")


class AccountUpdate(RequestModel):
    """Only the fields given change."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"timezone": "Africa/Lagos"}]})

    timezone: str | None = Field(
        default=None,
        max_length=64,
        description="An IANA time zone name, such as `Europe/Paris`; anything else is "
        "`400 parameter_invalid`.",
    )
