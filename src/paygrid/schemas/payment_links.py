"""Payment links, as Stripe shapes them (``object: "payment_link"``), with paygrid's
``expires_at`` (Stripe has no expiry on links)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from paygrid.domain.payment_links import AfterCompletion
from paygrid.schemas.catalog import Price
from paygrid.schemas.common import HTTP_URL_SCHEMA, Metadata, RequestModel

MAX_LINE_ITEMS = 20
MAX_QUANTITY = 1_000_000
MAX_URL_LENGTH = 2048


class LineItemCreate(RequestModel):
    price: str = Field(min_length=1, max_length=64, description="An active `price_...`.")
    quantity: StrictInt = Field(ge=1, le=MAX_QUANTITY)


class CompletedSessionsParams(RequestModel):
    limit: StrictInt = Field(
        ge=1, le=MAX_QUANTITY, description="How many payments the link takes at most."
    )


class RestrictionsParams(RequestModel):
    completed_sessions: CompletedSessionsParams


class RedirectParams(RequestModel):
    url: str = Field(min_length=1, max_length=MAX_URL_LENGTH, json_schema_extra=HTTP_URL_SCHEMA)


class AfterCompletionParams(RequestModel):
    type: AfterCompletion = Field(strict=False)
    redirect: RedirectParams | None = Field(
        default=None, description="Required with `type: redirect`."
    )


class PaymentLinkCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "line_items": [{"price": "price_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0", "quantity": 1}],
                    "restrictions": {"completed_sessions": {"limit": 100}},
                    "after_completion": {
                        "type": "redirect",
                        "redirect": {"url": "https://shop.example/thanks"},
                    },
                }
            ]
        }
    )

    line_items: list[LineItemCreate] = Field(min_length=1, max_length=MAX_LINE_ITEMS)
    restrictions: RestrictionsParams | None = None
    expires_at: StrictInt | None = Field(
        default=None, description="paygrid extension: Unix time after which the link is gone."
    )
    after_completion: AfterCompletionParams | None = Field(
        default=None, description="Default `hosted_confirmation`."
    )
    metadata: Metadata = Field(default_factory=dict)


class PaymentLinkUpdate(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"active": False}]})

    active: StrictBool | None = Field(
        default=None, description="`false`: the link shows a 410 page and takes no payment."
    )
    after_completion: AfterCompletionParams | None = None
    expires_at: StrictInt | None = Field(
        default=None, description="A new expiry (Unix time, in the future); 0 removes it."
    )
    metadata: Metadata | None = Field(
        default=None, description='Merged into the current metadata; a key set to "" goes.'
    )


class LineItem(BaseModel):
    id: str
    object: Literal["item"] = "item"
    price: Price
    quantity: int
    currency: str
    amount_subtotal: int
    amount_total: int
    description: str


class LineItems(BaseModel):
    object: Literal["list"] = "list"
    data: list[LineItem]
    has_more: Literal[False] = False
    url: str


class CompletedSessions(BaseModel):
    count: int = Field(description="How many customers have paid through the link.")
    limit: int


class Restrictions(BaseModel):
    completed_sessions: CompletedSessions


class Redirect(BaseModel):
    url: str


class AfterCompletionView(BaseModel):
    type: AfterCompletion
    redirect: Redirect | None = None


class PaymentLink(BaseModel):
    id: str = Field(examples=["plink_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"])
    object: Literal["payment_link"] = "payment_link"
    active: bool
    url: str = Field(description="The public page: `{base}/l/{random slug}`.")
    currency: str
    line_items: LineItems
    restrictions: Restrictions | None
    completed_sessions_count: int = Field(
        description="paygrid extension: completions so far (also under `restrictions` "
        "when the link has a limit)."
    )
    after_completion: AfterCompletionView
    expires_at: int | None = Field(description="paygrid extension: Unix time, or null.")
    metadata: dict[str, str]
    livemode: bool
    created: int
