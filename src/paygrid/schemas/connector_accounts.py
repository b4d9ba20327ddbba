"""Connector accounts: a merchant's credentials at one provider, and routing rules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from paygrid.money import MAX_AMOUNT
from paygrid.schemas.common import (
    CURRENCY_SCHEMA,
    HTTP_URL_SCHEMA,
    FreeText,
    Metadata,
    RequestModel,
    unix,
)

if TYPE_CHECKING:
    from paygrid.db.connector_accounts import ConnectorAccountRow
    from paygrid.db.routing_rules import RoutingRuleRow

# Which providers exist is the connector registry's to say (each provider package declares
# its own facts); the service refuses an unknown name as ``parameter_invalid``. The OpenAPI
# document lists the built-in ones (a test keeps this list equal to the registry's).
Provider = str
BUILTIN_PROVIDER_NAMES = ("stripe", "paystack", "simulator")
PROVIDER_FIELD: dict[str, Any] = {
    "description": "The payment provider.",
    "json_schema_extra": {"enum": list(BUILTIN_PROVIDER_NAMES)},
}
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{3}$")]
# A currency an account processes: checked against the registry (currency_not_supported), so
# the OpenAPI document lists the registry's codes.
AccountCurrency = Annotated[CurrencyCode, Field(json_schema_extra=CURRENCY_SCHEMA)]


class Credentials(RequestModel):
    secret_key: str = Field(
        min_length=8,
        max_length=255,
        description="The provider's secret API key: `sk_test_...` for test-mode accounts, "
        "`sk_live_...` for live ones. Not needed for the simulator.",
        examples=["sk_test_51H..."],
    )
    webhook_secret: str | None = Field(
        default=None,
        max_length=255,
        description="Stripe only: the endpoint's signing secret (`whsec_...`). Paystack signs "
        "webhooks with the secret key itself.",
        examples=["whsec_..."],
    )


class ConnectorAccountCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "provider": "paystack",
                    "name": "Paystack Nigeria",
                    "credentials": {"secret_key": "sk_test_xxxxxxxxxxxxxxxx"},
                    "currencies": ["NGN", "GHS"],
                }
            ],
            # What services.connector_accounts checks per provider: stripe and paystack
            # need credentials; paystack signs webhooks with the secret key itself.
            "allOf": [
                {
                    "if": {"properties": {"provider": {"enum": ["stripe", "paystack"]}}},
                    "then": {
                        "required": ["credentials"],
                        "properties": {"credentials": {"type": "object"}},
                    },
                },
                {
                    "if": {"properties": {"provider": {"const": "paystack"}}},
                    "then": {
                        "properties": {
                            "credentials": {"properties": {"webhook_secret": {"type": "null"}}}
                        }
                    },
                },
            ],
        }
    )

    provider: Provider = Field(examples=["stripe"], **PROVIDER_FIELD)
    name: FreeText | None = Field(default=None, max_length=200)
    credentials: Credentials | None = Field(
        default=None, description="Required for stripe and paystack."
    )
    currencies: list[AccountCurrency] | None = Field(
        default=None,
        min_length=1,
        max_length=50,
        description="Currencies this account processes; default: every currency the "
        "provider supports.",
    )
    api_base: str | None = Field(
        default=None,
        max_length=2048,
        description="Test mode only: send this account's API calls to another base URL "
        "(a local fake of the provider).",
        json_schema_extra=HTTP_URL_SCHEMA,
    )
    metadata: Metadata = Field(default_factory=dict)


class ConnectorAccountUpdate(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"currencies": ["NGN"]}]})

    name: FreeText | None = Field(default=None, max_length=200)
    credentials: Credentials | None = Field(
        default=None, description="Replaces both credentials (to rotate a provider key)."
    )
    currencies: list[AccountCurrency] | None = Field(default=None, min_length=1, max_length=50)
    api_base: str | None = Field(default=None, max_length=2048, json_schema_extra=HTTP_URL_SCHEMA)
    metadata: Metadata | None = None


class CredentialsView(BaseModel):
    secret_key: str | None = Field(description="Only the last four characters: `…abcd`.")
    webhook_secret: str | None = Field(description="Only the last four characters, when set.")


class ConnectorAccount(BaseModel):
    id: str = Field(examples=["ca_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"])
    object: Literal["connector_account"] = "connector_account"
    provider: Provider = Field(**PROVIDER_FIELD)
    name: str | None
    currencies: list[str]
    api_base: str | None
    status: Literal["enabled", "disabled"]
    credentials: CredentialsView
    capabilities: list[str] = Field(
        description="What this provider supports: manual_capture, partial_capture, void, "
        "refund, partial_refund, three_ds, saved_methods, card_tokenization, redirect, "
        "webhooks, idempotent_refunds (refund calls carry an idempotency key, so a refund "
        "whose answer was lost can be re-sent safely)."
    )
    webhook_url: str = Field(
        description="Register this URL at the provider so its events reach paygrid."
    )
    metadata: dict[str, str]
    livemode: bool
    created: int

    @classmethod
    def from_row(
        cls, row: ConnectorAccountRow, *, capabilities: list[str], webhook_url: str
    ) -> ConnectorAccount:
        secret_last4 = row.secret_key_last4
        hook_last4 = row.webhook_secret_last4
        return cls(
            id=row.id,
            provider=row.provider,
            name=row.name,
            currencies=list(row.currencies),
            api_base=row.api_base,
            status=row.status,
            credentials=CredentialsView(
                secret_key=f"…{secret_last4}" if secret_last4 else None,
                webhook_secret=f"…{hook_last4}" if hook_last4 else None,
            ),
            capabilities=capabilities,
            webhook_url=webhook_url,
            metadata=row.metadata,
            livemode=row.livemode,
            created=unix(row.created_at) or 0,
        )


PaymentMethodType = Literal["card", "bank", "ussd", "mobile_money", "bank_transfer", "qr"]


class AmountRange(RequestModel):
    """Bounds in minor units, at most the largest amount any currency allows."""

    # The maximum is checked when a rule is saved (services.routing), not when one is read:
    # a rule stored before the bound existed must still load.
    gte: int | None = Field(default=None, ge=0, json_schema_extra={"maximum": MAX_AMOUNT})
    lte: int | None = Field(default=None, ge=0, json_schema_extra={"maximum": MAX_AMOUNT})


class RuleConditions(RequestModel):
    """Every condition given must hold (an absent condition matches everything)."""

    currency: list[CurrencyCode] | None = Field(default=None, min_length=1)
    amount: AmountRange | None = None
    payment_method_type: list[PaymentMethodType] | None = Field(default=None, min_length=1)
    card_country: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$")]] | None = Field(
        default=None, min_length=1, description="ISO 3166-1 alpha-2 issuing countries."
    )
    metadata: dict[str, str] | None = Field(
        default=None, description="Every key must be present on the payment with this value."
    )


class Destination(RequestModel):
    connector_account: str
    weight: int = Field(default=1, ge=0, le=10_000, description="Used with `split: weighted` only.")


class RoutingRuleCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Large NGN to Paystack",
                    "priority": 10,
                    "conditions": {"currency": ["NGN"], "amount": {"gte": 100000}},
                    "destinations": [
                        {"connector_account": "ca_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"},
                        {"connector_account": "ca_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R1"},
                    ],
                }
            ]
        }
    )

    name: FreeText | None = Field(default=None, max_length=200)
    priority: int = Field(
        default=100, ge=0, le=1_000_000, description="Lower runs first; ties by age."
    )
    conditions: RuleConditions = Field(default_factory=RuleConditions)
    destinations: list[Destination] = Field(
        min_length=1,
        max_length=10,
        description="Connector accounts to try, in order. With `split: weighted` the "
        "first one is picked by weight (stable per payment), then the rest in order.",
    )
    split: Literal["priority", "weighted"] = "priority"


class RoutingRuleUpdate(RequestModel):
    name: FreeText | None = Field(default=None, max_length=200)
    priority: int | None = Field(default=None, ge=0, le=1_000_000)
    conditions: RuleConditions | None = None
    destinations: list[Destination] | None = Field(default=None, min_length=1, max_length=10)
    split: Literal["priority", "weighted"] | None = None


class RoutingRule(BaseModel):
    id: str = Field(examples=["rr_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0"])
    object: Literal["routing_rule"] = "routing_rule"
    name: str | None
    priority: int
    conditions: RuleConditions
    destinations: list[Destination]
    split: Literal["priority", "weighted"]
    livemode: bool
    created: int

    @classmethod
    def from_row(cls, row: RoutingRuleRow) -> RoutingRule:
        return cls(
            id=row.id,
            name=row.name,
            priority=row.priority,
            conditions=RuleConditions.model_validate(row.conditions, strict=False),
            destinations=[Destination.model_validate(d, strict=False) for d in row.destinations],
            split=row.split,
            livemode=row.livemode,
            created=unix(row.created_at) or 0,
        )
