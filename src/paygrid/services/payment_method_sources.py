"""What a payment request pays with, before any connector is chosen: a saved method, raw
card data (test mode), a test magic id, a provider's token, or nothing (the provider's
hosted page); and the tokenizing that turns card data into a payment method."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from paygrid.connectors.base import CardDetails, CardTokenizer, InvalidCard, TokenizedCard
from paygrid.connectors.simulator.cards import MAGIC_PAYMENT_METHODS
from paygrid.db import connector_accounts as accounts_db
from paygrid.db.payment_methods import PaymentMethodRow
from paygrid.dependencies import Deps
from paygrid.domain.errors import CardError, InvalidRequest
from paygrid.domain.payment_methods import PaymentMethodType
from paygrid.ids import new_id
from paygrid.schemas.payment_methods import CardInput, PaymentMethodData
from paygrid.services import payment_method_ownership as ownership
from paygrid.services.context import Tenant

_CARD_ERROR_CODES = {
    "number": "incorrect_number",
    "exp_month": "invalid_expiry_month",
    "exp_year": "invalid_expiry_year",
    "cvc": "invalid_cvc",
}


async def tokenize(
    deps: Deps, tenant: Tenant, card: CardInput, *, param_prefix: str
) -> TokenizedCard:
    """Tokenize at the built-in simulator (``/v1/payment_methods``)."""
    tokenizer = deps.connectors.tokenizer(tenant.livemode)
    return await tokenize_at(tokenizer, card_details(card), param_prefix=param_prefix)


def card_details(card: CardInput) -> CardDetails:
    return CardDetails(card.number, card.exp_month, card.exp_year, card.cvc)


async def tokenize_at(
    tokenizer: CardTokenizer, details: CardDetails, *, param_prefix: str
) -> TokenizedCard:
    try:
        return await tokenizer.tokenize_card(details)
    except InvalidCard as error:
        raise CardError(
            str(error),
            param=f"{param_prefix}[{error.param}]",
            code=_CARD_ERROR_CODES.get(error.param, "card_declined"),
        ) from None


@dataclass(frozen=True, slots=True)
class SavedMethod:
    row: PaymentMethodRow


@dataclass(frozen=True, slots=True)
class RawCard:
    """Card data from this request, held in memory only until a connector tokenizes it."""

    details: CardDetails
    param_prefix: str = "payment_method_data[card]"


@dataclass(frozen=True, slots=True)
class MagicMethod:
    """A test-mode magic id such as ``pm_card_visa`` (simulator only)."""

    magic_id: str


@dataclass(frozen=True, slots=True)
class ProviderTokenMethod:
    """A token the provider's own fields made (Stripe.js), usable at its account only."""

    account_id: str
    token: str


MethodSource = SavedMethod | RawCard | MagicMethod | ProviderTokenMethod | None
# (None: a hosted/redirect flow at the provider.)


async def source_of(
    deps: Deps,
    tenant: Tenant,
    payment_method: str | None,
    data: PaymentMethodData | None,
    *,
    customer_id: str | None,
    payment_id: str | None = None,
    idempotency_key: str | None = None,
) -> MethodSource:
    """What a payment request pays with, before any connector is chosen. A saved method is
    checked against the payment (``payment_id``, or the one being created with
    ``idempotency_key``) and its customer (``payment_method_ownership``)."""
    if payment_method is not None and data is not None:
        raise InvalidRequest(
            "Pass either payment_method or payment_method_data, not both.",
            param="payment_method_data",
        )
    if data is not None and data.provider_token is not None:
        token = data.provider_token
        account = await accounts_db.get_account(
            deps.pool, tenant.merchant_id, tenant.livemode, token.connector_account
        )
        if account is None:
            raise InvalidRequest(
                f"No such connector account: '{token.connector_account}'",
                param="payment_method_data[provider_token][connector_account]",
                code="resource_missing",
            )
        return ProviderTokenMethod(account.id, token.token)
    if data is not None and data.card is not None:
        deps.connectors.tokenizer(tenant.livemode)  # raw card data: test mode only
        return RawCard(card_details(data.card))
    if payment_method is None:
        return None
    return await _saved_or_magic(
        deps, tenant, payment_method, customer_id, payment_id, idempotency_key
    )


async def _saved_or_magic(
    deps: Deps,
    tenant: Tenant,
    payment_method: str,
    customer_id: str | None,
    payment_id: str | None,
    idempotency_key: str | None,
) -> SavedMethod | MagicMethod:
    row = await ownership.usable_method(
        deps.pool,
        tenant,
        payment_method,
        customer_id=customer_id,
        payment_id=payment_id,
        idempotency_key=idempotency_key,
    )
    if row is not None:
        return SavedMethod(row)
    if not tenant.livemode and payment_method in MAGIC_PAYMENT_METHODS:
        return MagicMethod(payment_method)
    raise InvalidRequest(
        f"No such payment_method: '{payment_method}'",
        param="payment_method",
        code="resource_missing",
    )


def new_method_row(
    tenant: Tenant,
    token: TokenizedCard,
    connector: str,
    now: datetime,
    connector_account_id: str | None = None,
    customer_id: str | None = None,
    channel: str | None = None,
) -> PaymentMethodRow:
    """The row of a payment method made from a fresh token, for writing inside a larger
    statement (``pm_db.values_of``)."""
    return PaymentMethodRow(
        id=new_id("pm"),
        merchant_id=tenant.merchant_id,
        livemode=tenant.livemode,
        type=PaymentMethodType.CARD,
        card_brand=token.brand,
        card_last4=token.last4,
        card_exp_month=token.exp_month,
        card_exp_year=token.exp_year,
        connector=connector,
        connector_reference=token.token,
        connector_account_id=connector_account_id,
        channel=channel,
        card_country=token.country,
        customer_id=customer_id,
        metadata={},
        created_at=now,
    )
