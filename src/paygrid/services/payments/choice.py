"""The choice of where a payment's next attempt goes: the first of its plan's targets that
can take it, with the payment method to use there (raw card data is tokenized at that
target)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from paygrid.connectors.base import (
    Capability,
    CardTokenizer,
    InvalidCard,
    InvalidCredentials,
    ProviderUnreachable,
    TokenDescriber,
)
from paygrid.connectors.registry import BUILTIN_SIMULATOR
from paygrid.db.payment_methods import PaymentMethodRow
from paygrid.dependencies import Deps
from paygrid.domain.errors import CapabilityNotSupported, InvalidRequest, ProviderUnavailable
from paygrid.services import payment_method_sources as sources
from paygrid.services.context import Tenant
from paygrid.services.routing import Target


@dataclass(frozen=True, slots=True)
class Choice:
    """Where the next attempt goes, with the payment method to use there. ``new_method`` is
    a payment-method row to write with the attempt (a card tokenized just now);
    ``skipped`` are accounts that could not be reached on the way (recorded as closed
    attempts, so every failed-over account shows in the payment's ``attempts``)."""

    target: Target
    method: PaymentMethodRow | None
    new_method: PaymentMethodRow | None = None
    skipped: list[Target] = field(default_factory=list)


def unusable_reason(
    source: sources.MethodSource,
    target: Target,
    *,
    manual_capture: bool,
    email: str | None = None,
) -> str | None:
    """Why ``target`` cannot take this payment (``None`` when it can)."""
    caps = target.capabilities
    if manual_capture and Capability.MANUAL_CAPTURE not in caps:
        return f"{target.provider} does not support manual capture"
    if target.facts.requires_email and not email:
        return f"{target.provider} needs the customer's email (receipt_email or a customer's)"
    match source:
        case None:
            if Capability.REDIRECT not in caps:
                return f"{target.provider} needs a payment method (it has no hosted payment page)"
        case sources.RawCard():
            if Capability.CARD_TOKENIZATION not in caps:
                return f"{target.provider} does not accept raw card data"
        case sources.MagicMethod():
            if target.provider != BUILTIN_SIMULATOR:
                return "test magic payment methods work with the simulator only"
        case sources.ProviderTokenMethod(account_id=account_id):
            if account_id != target.account_id:
                return "a provider token can only be charged at its own connector account"
        case sources.SavedMethod(row=row):
            bound = row.connector_account_id
            if bound is not None and bound != target.account_id:
                return "the payment method was saved at another connector account"
            if bound is None and target.provider != row.connector:
                return f"the payment method was saved at the {row.connector} connector"
    return None


async def choose(
    deps: Deps,
    tenant: Tenant,
    targets: list[Target],
    source: sources.MethodSource,
    *,
    manual_capture: bool,
    now: datetime,
    email: str | None = None,
) -> Choice:
    """The first target that can take the payment, tokenizing raw card data there. A target
    whose tokenizer cannot be reached is skipped (nothing was sent, so failing over is
    safe); any other answer (an invalid card) is final."""
    skipped: list[Target] = []
    reasons: list[str] = []
    for target in targets:
        reason = unusable_reason(source, target, manual_capture=manual_capture, email=email)
        if reason is not None:
            reasons.append(reason)
            continue
        try:
            method, new_method = await _method_at(deps, tenant, target, source, now=now)
        except (ProviderUnreachable, InvalidCredentials):  # nothing was processed there
            skipped.append(target)
            continue
        return Choice(target, method, new_method, skipped)
    if skipped:
        raise ProviderUnavailable(
            "No payment provider could be reached; nothing was charged. Retry the request."
        )
    raise CapabilityNotSupported(
        "No connector account can process this payment: " + "; ".join(dict.fromkeys(reasons)) + ".",
        param="capture_method" if manual_capture and reasons else "payment_method",
    )


async def _method_at(
    deps: Deps,
    tenant: Tenant,
    target: Target,
    source: sources.MethodSource,
    *,
    now: datetime,
) -> tuple[PaymentMethodRow | None, PaymentMethodRow | None]:
    match source:
        case None:
            return None, None
        case sources.SavedMethod(row=saved):
            return saved, None
        case sources.MagicMethod(magic_id=magic_id):
            token = await deps.connectors.simulator.tokenize_magic(magic_id)
            assert token is not None  # source_of only accepts known magic ids
        case sources.ProviderTokenMethod(token=provider_token):
            describer = await deps.connectors.connector_for(deps.pool, target.account_id)
            if not isinstance(describer, TokenDescriber):
                raise CapabilityNotSupported(
                    f"{target.provider} does not accept provider tokens.",
                    param="payment_method_data[provider_token]",
                )
            try:
                async with deps.connectors.guard(target.account_id, "describe_token"):
                    token = await describer.describe_token(provider_token)
            except InvalidCard as error:
                raise InvalidRequest(
                    str(error),
                    param="payment_method_data[provider_token][token]",
                    code="resource_missing",
                ) from None
        case sources.RawCard(details=details, param_prefix=prefix):
            connector = await deps.connectors.connector_for(deps.pool, target.account_id)
            # CARD_TOKENIZATION was checked (an isinstance of the runtime-checkable
            # protocol, on every payment, cost more than the rest of the choice).
            tokenizer = cast(CardTokenizer, connector)
            async with deps.connectors.guard(target.account_id, "tokenize"):
                token = await sources.tokenize_at(tokenizer, details, param_prefix=prefix)
    # A card tokenized for a payment belongs to no customer: attaching it is the payment
    # methods API's business.
    new_row = sources.new_method_row(tenant, token, target.provider, now, target.account_id)
    return new_row, new_row
