"""The catalog's objects, as Stripe shapes them: products (what is sold) and prices (how
much, in which currency, how often)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from paygrid.domain.catalog import (
    MAX_INTERVAL_COUNT,
    PriceType,
    RecurringInterval,
    interval_count_error,
)
from paygrid.money import MAX_AMOUNT
from paygrid.schemas.common import (
    CURRENCY_SCHEMA,
    FreeText,
    Metadata,
    RequestModel,
    unix,
)

if TYPE_CHECKING:
    from paygrid.db.prices import PriceRow
    from paygrid.db.products import ProductRow

MAX_NAME_LENGTH = 250
MAX_DESCRIPTION_LENGTH = 1000
MAX_LOOKUP_KEY_LENGTH = 200
MAX_NICKNAME_LENGTH = 250
# The fields of a price that never change once it is created (Stripe's rule): changing them
# means a new price, and archiving this one.
IMMUTABLE_PRICE_FIELDS = ("product", "currency", "unit_amount", "recurring", "type")

ProductName = Annotated[FreeText, Field(min_length=1, max_length=MAX_NAME_LENGTH)]
LookupKey = Annotated[FreeText, Field(min_length=1, max_length=MAX_LOOKUP_KEY_LENGTH)]
UnitAmount = Annotated[
    StrictInt,
    Field(
        gt=0,
        le=MAX_AMOUNT,
        description="A positive integer in the currency's minor unit (cents for USD, yen "
        "for JPY, fils for KWD), at most the currency's largest amount.",
        examples=[1500],
    ),
]


# --- products -----------------------------------------------------------------------------


class ProductCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "Gold plan", "description": "Everything, monthly"}]
        }
    )

    name: ProductName = Field(examples=["Gold plan"])
    description: FreeText | None = Field(default=None, max_length=MAX_DESCRIPTION_LENGTH)
    active: StrictBool = True
    metadata: Metadata = Field(default_factory=dict)


class ProductUpdate(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"active": False}]})

    name: ProductName | None = None
    description: FreeText | None = Field(
        default=None,
        max_length=MAX_DESCRIPTION_LENGTH,
        description="An empty string (or null) removes the description.",
    )
    active: StrictBool | None = Field(
        default=None, description="`false` archives the product: its prices stay usable."
    )
    metadata: Metadata | None = Field(
        default=None, description='Merged into the current metadata; a key set to "" goes.'
    )


class Product(BaseModel):
    id: str = Field(examples=["prod_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"])
    object: Literal["product"] = "product"
    active: bool
    name: str
    description: str | None
    metadata: dict[str, str]
    livemode: bool
    created: int
    updated: int

    @classmethod
    def from_row(cls, row: ProductRow) -> Product:
        return cls(
            id=row.id,
            active=row.active,
            name=row.name,
            description=row.description,
            metadata=row.metadata,
            livemode=row.livemode,
            created=unix(row.created_at) or 0,
            updated=unix(row.updated_at) or 0,
        )


# --- prices -------------------------------------------------------------------------------


def _interval_branches() -> list[JsonValue]:
    """One JSON Schema branch per interval with its largest count, so that the OpenAPI
    document states the one-year rule that ``RecurringParams`` enforces."""
    return [
        {
            "properties": {
                "interval": {"const": interval.value},
                "interval_count": {"maximum": most},
            }
        }
        for interval, most in MAX_INTERVAL_COUNT.items()
    ]


class RecurringParams(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": _interval_branches(),
            "examples": [{"interval": "month", "interval_count": 1}],
        }
    )

    interval: RecurringInterval = Field(
        strict=False,  # the enum's value, as JSON sends it
        description="Bill every day, week, month or year (times `interval_count`).",
    )
    interval_count: StrictInt = Field(
        default=1,
        ge=1,
        le=365,
        description="How many intervals between billing dates: at most one year in all "
        "(365 days, 52 weeks, 12 months or 1 year).",
    )

    @field_validator("interval_count")
    @classmethod
    def _at_most_a_year(cls, count: int, info: Any) -> int:
        interval = info.data.get("interval")
        if interval is None:
            return count  # the interval's own error is reported
        reason = interval_count_error(RecurringInterval(interval), count)
        if reason is not None:
            raise ValueError(reason)
        return count


class PriceCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "product": "prod_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0",
                    "currency": "USD",
                    "unit_amount": 1500,
                    "recurring": {"interval": "month"},
                    "lookup_key": "gold_monthly",
                }
            ]
        }
    )

    product: str = Field(min_length=1, max_length=64, description="The `prod_...` it prices.")
    currency: str = Field(
        min_length=1,
        max_length=16,
        description="ISO 4217 code of a supported currency, in either case; in live mode, "
        "one of an enabled connector account's currencies.",
        examples=["USD"],
        json_schema_extra=CURRENCY_SCHEMA,
    )
    unit_amount: UnitAmount
    recurring: RecurringParams | None = Field(
        default=None, description="Absent or null: a one-time price."
    )
    active: StrictBool = True
    lookup_key: LookupKey | None = Field(
        default=None, description="Unique among this merchant's active prices in this mode."
    )
    transfer_lookup_key: StrictBool = Field(
        default=False,
        description="Take the lookup key from the active price that has it, instead of a "
        "409 `lookup_key_in_use`.",
    )
    nickname: FreeText | None = Field(default=None, max_length=MAX_NICKNAME_LENGTH)
    metadata: Metadata = Field(default_factory=dict)


# The pydantic error type of a field a price may not change; ``paygrid.api.errors`` turns
# it into ``parameter_immutable``, naming the field (its context carries the parameter).
PARAMETER_IMMUTABLE = "parameter_immutable"


class PriceUpdate(RequestModel):
    """Only ``active``, ``nickname``, ``lookup_key`` and ``metadata`` change; any other
    field of a price is refused with ``parameter_immutable``."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"active": False}, {"nickname": "Gold (2026)"}]}
    )

    active: StrictBool | None = None
    nickname: FreeText | None = Field(
        default=None, max_length=MAX_NICKNAME_LENGTH, description='"" removes the nickname.'
    )
    lookup_key: FreeText | None = Field(
        default=None,
        max_length=MAX_LOOKUP_KEY_LENGTH,
        description='"" removes the lookup key.',
    )
    transfer_lookup_key: StrictBool = False
    metadata: Metadata | None = Field(
        default=None, description='Merged into the current metadata; a key set to "" goes.'
    )

    @model_validator(mode="before")
    @classmethod
    def _immutable(cls, data: Any) -> Any:
        refuse_immutable_fields(data)
        return data


def refuse_immutable_fields(data: Any) -> None:
    """Raise the ``parameter_immutable`` error for the first field of ``data`` (a price
    update's body) that a price never changes."""
    if not isinstance(data, dict):
        return
    for name in IMMUTABLE_PRICE_FIELDS:
        if name in data:
            raise PydanticCustomError(
                PARAMETER_IMMUTABLE,
                "{reason}",
                {
                    "reason": f"A price's {name} cannot change. Create a new price and "
                    "archive this one with active=false.",
                    "param": name,
                },
            )


class Recurring(BaseModel):
    interval: RecurringInterval
    interval_count: int
    usage_type: Literal["licensed"] = "licensed"


class Price(BaseModel):
    id: str = Field(examples=["price_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"])
    object: Literal["price"] = "price"
    active: bool
    billing_scheme: Literal["per_unit"] = "per_unit"
    currency: str = Field(examples=["USD"])
    unit_amount: int
    unit_amount_decimal: str = Field(description="`unit_amount` as a string, as Stripe has it.")
    product: str
    type: PriceType
    recurring: Recurring | None
    lookup_key: str | None
    nickname: str | None
    metadata: dict[str, str]
    livemode: bool
    created: int

    @classmethod
    def from_row(cls, row: PriceRow) -> Price:
        recurring = None
        if row.recurring_interval is not None and row.recurring_interval_count is not None:
            recurring = Recurring(
                interval=row.recurring_interval, interval_count=row.recurring_interval_count
            )
        return cls(
            id=row.id,
            active=row.active,
            currency=row.currency,
            unit_amount=row.unit_amount,
            unit_amount_decimal=str(row.unit_amount),
            product=row.product_id,
            type=row.type,
            recurring=recurring,
            lookup_key=row.lookup_key,
            nickname=row.nickname,
            metadata=row.metadata,
            livemode=row.livemode,
            created=unix(row.created_at) or 0,
        )
