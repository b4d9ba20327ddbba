"""Customer billing portal session objects (Stripe's ``billing_portal.session``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from paygrid.schemas.common import HTTP_URL_SCHEMA, RequestModel, unix

if TYPE_CHECKING:
    from paygrid.db.billing_portal_sessions import PortalSessionRow


class BillingPortalSessionCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "customer": "cus_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0",
                    "return_url": "https://shop.example.com/account",
                }
            ]
        }
    )

    customer: str = Field(
        min_length=1, max_length=64, description="The `cus_...` whose portal this is."
    )
    return_url: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        description="Where the portal's link back to your site leads.",
        examples=["https://shop.example.com/account"],
        json_schema_extra=HTTP_URL_SCHEMA,
    )


class BillingPortalSession(BaseModel):
    id: str = Field(examples=["bps_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"])
    object: Literal["billing_portal.session"] = "billing_portal.session"
    url: str = Field(
        description="The portal, for this customer only: redirect the customer here at once. "
        "It must be opened before `expires_at`; the browser that opens it keeps the portal "
        "for an hour. Returned only when the session is created (it is not stored).",
        examples=["https://pay.example.com/p/4q2v...Xw"],
    )
    return_url: str | None
    customer: str
    livemode: bool
    created: int
    expires_at: int = Field(description="Unix time until which the link can be opened.")

    @classmethod
    def from_row(cls, row: PortalSessionRow, url: str) -> BillingPortalSession:
        return cls(
            id=row.id,
            url=url,
            return_url=row.return_url,
            customer=row.customer_id,
            livemode=row.livemode,
            created=unix(row.created_at) or 0,
            expires_at=unix(row.expires_at) or 0,
        )
