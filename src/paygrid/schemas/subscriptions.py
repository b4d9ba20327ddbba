"""Subscription objects and their request bodies, modelled on Stripe's."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from paygrid.domain.invoices import CollectionMethod
from paygrid.domain.subscriptions import SubscriptionStatus
from paygrid.schemas.catalog import Price
from paygrid.schemas.common import Metadata, RequestModel, not_both, unix
from paygrid.schemas.test_clocks import FrozenTime

if TYPE_CHECKING:
    from paygrid.db.prices import PriceRow
    from paygrid.db.subscriptions import SubscriptionItemRow, SubscriptionRow

MAX_ITEMS = 20
MAX_QUANTITY = 1_000_000
MAX_TRIAL_DAYS = 730
MAX_DAYS_UNTIL_DUE = 3650
DEFAULT_DAYS_UNTIL_DUE = 30
_NULL: dict[str, Any] = {"type": "null"}

PaymentBehavior = Literal["allow_incomplete", "default_incomplete", "error_if_incomplete"]
ProrationBehaviorName = Literal["create_prorations", "none", "always_invoice"]


class ItemCreate(RequestModel):
    price: str = Field(min_length=1, max_length=255, examples=["price_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"])
    quantity: StrictInt = Field(default=1, ge=1, le=MAX_QUANTITY)
    metadata: Metadata = Field(default_factory=dict)


class SubscriptionCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                not_both("trial_period_days", "trial_end"),
                not_both("trial_period_days", "billing_cycle_anchor"),
                not_both("trial_end", "billing_cycle_anchor"),
                {
                    "if": {
                        "required": ["collection_method"],
                        "properties": {"collection_method": {"const": "send_invoice"}},
                    },
                    "else": {"properties": {"days_until_due": _NULL}},
                },
            ],
            "examples": [
                {
                    "customer": "cus_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0",
                    "items": [{"price": "price_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0", "quantity": 1}],
                    "trial_period_days": 7,
                }
            ],
        }
    )

    customer: str = Field(min_length=1, max_length=255, examples=["cus_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"])
    items: list[ItemCreate] = Field(
        min_length=1,
        max_length=MAX_ITEMS,
        description="Recurring prices of one currency and one interval, each at most once.",
    )
    default_payment_method: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="A method saved to the customer; default: the customer's "
        "`invoice_settings.default_payment_method`.",
    )
    trial_period_days: StrictInt | None = Field(default=None, ge=1, le=MAX_TRIAL_DAYS)
    trial_end: FrozenTime | None = Field(
        default=None, description="Unix time; after now, at most 730 days ahead."
    )
    billing_cycle_anchor: FrozenTime | None = Field(
        default=None,
        description="Unix time, after now and within one interval: the first invoice is "
        "prorated up to it. Default: now (or the trial's end).",
    )
    payment_behavior: PaymentBehavior = "allow_incomplete"
    proration_behavior: ProrationBehaviorName = Field(
        default="create_prorations",
        description="For a `billing_cycle_anchor`: `none` bills the first period in full.",
    )
    cancel_at_period_end: StrictBool = False
    collection_method: Literal["charge_automatically", "send_invoice"] = "charge_automatically"
    days_until_due: StrictInt | None = Field(
        default=None,
        ge=0,
        le=MAX_DAYS_UNTIL_DUE,
        description=f"`send_invoice` only; default {DEFAULT_DAYS_UNTIL_DUE}.",
    )
    metadata: Metadata = Field(default_factory=dict)


class ItemUpdate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            # An existing item (id) or a new one (price); deleting names the item.
            "anyOf": [
                {"required": ["id"], "properties": {"id": {"type": "string"}}},
                {
                    "required": ["price"],
                    "properties": {"price": {"type": "string"}, "deleted": {"const": False}},
                },
            ],
            "examples": [{"id": "si_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0", "quantity": 2}],
        }
    )

    id: str | None = Field(
        default=None, min_length=1, max_length=255, description="An item to change or delete."
    )
    price: str | None = Field(
        default=None, min_length=1, max_length=255, description="A new price (or a new item)."
    )
    quantity: StrictInt | None = Field(default=None, ge=1, le=MAX_QUANTITY)
    deleted: StrictBool = Field(default=False, description="With `id`: remove the item.")
    metadata: Metadata | None = None


class SubscriptionUpdate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [{"id": "si_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0", "quantity": 3}],
                    "proration_behavior": "always_invoice",
                }
            ]
        }
    )

    items: list[ItemUpdate] | None = Field(default=None, max_length=MAX_ITEMS)
    proration_behavior: ProrationBehaviorName = "create_prorations"
    cancel_at_period_end: StrictBool | None = None
    default_payment_method: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
    )
    metadata: Metadata | None = None


class SubscriptionPause(RequestModel):
    resumes_at: FrozenTime | None = Field(
        default=None, description="Unix time after now: resume then (`billing_cycle_anchor: now`)."
    )


class SubscriptionResume(RequestModel):
    billing_cycle_anchor: Literal["now", "unchanged"] = Field(
        default="now",
        description="`now`: a new period (and invoice) starts now; `unchanged`: the periods "
        "keep their anchor and the next renewal bills the next one.",
    )


class SubscriptionCancel(RequestModel):
    at_period_end: StrictBool = Field(
        default=False, description="Cancel when the current period ends instead of now."
    )


class SubscriptionItem(BaseModel):
    id: str = Field(examples=["si_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"])
    object: Literal["subscription_item"] = "subscription_item"
    subscription: str
    price: Price
    quantity: int
    metadata: dict[str, str]
    created: int

    @classmethod
    def from_row(cls, row: SubscriptionItemRow, price: PriceRow) -> SubscriptionItem:
        return cls(
            id=row.id,
            subscription=row.subscription_id,
            price=Price.from_row(price),
            quantity=row.quantity,
            metadata=row.metadata,
            created=unix(row.created_at) or 0,
        )


class SubscriptionItems(BaseModel):
    object: Literal["list"] = "list"
    data: list[SubscriptionItem]
    has_more: Literal[False] = False
    total_count: int


class Pause(BaseModel):
    paused_at: int
    resumes_at: int | None


class Subscription(BaseModel):
    id: str = Field(examples=["sub_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"])
    object: Literal["subscription"] = "subscription"
    customer: str
    status: SubscriptionStatus
    currency: str
    items: SubscriptionItems
    billing_cycle_anchor: int
    current_period_start: int
    current_period_end: int
    trial_start: int | None
    trial_end: int | None
    cancel_at_period_end: bool
    cancel_at: int | None
    canceled_at: int | None
    ended_at: int | None
    pause: Pause | None = Field(description="While paused: since when, and until when.")
    collection_method: CollectionMethod
    days_until_due: int | None
    default_payment_method: str | None
    latest_invoice: str | None
    metadata: dict[str, str]
    livemode: bool
    created: int

    @classmethod
    def from_row(
        cls,
        row: SubscriptionRow,
        items: Sequence[SubscriptionItemRow],
        prices: dict[str, PriceRow],
    ) -> Subscription:
        paused = row.paused_at if row.status is SubscriptionStatus.PAUSED else None
        return cls(
            id=row.id,
            customer=row.customer_id,
            status=row.status,
            currency=row.currency,
            items=SubscriptionItems(
                data=[SubscriptionItem.from_row(i, prices[i.price_id]) for i in items],
                total_count=len(items),
            ),
            billing_cycle_anchor=unix(row.billing_cycle_anchor) or 0,
            current_period_start=unix(row.current_period_start) or 0,
            current_period_end=unix(row.current_period_end) or 0,
            trial_start=unix(row.trial_start),
            trial_end=unix(row.trial_end),
            cancel_at_period_end=row.cancel_at_period_end,
            cancel_at=unix(row.current_period_end) if row.cancel_at_period_end else None,
            canceled_at=unix(row.canceled_at),
            ended_at=unix(row.ended_at),
            pause=None
            if paused is None
            else Pause(paused_at=unix(paused) or 0, resumes_at=unix(row.resumes_at)),
            collection_method=row.collection_method,
            days_until_due=row.days_until_due,
            default_payment_method=row.default_payment_method_id,
            latest_invoice=row.latest_invoice_id,
            metadata=row.metadata,
            livemode=row.livemode,
            created=unix(row.created_at) or 0,
        )
