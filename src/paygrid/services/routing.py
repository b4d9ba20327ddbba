"""Routing rules (CRUD) and the choice of connector accounts for one payment."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from paygrid.connectors.base import (
    Capability,
    CardTokenizer,
    InvalidCard,
    InvalidCredentials,
    ProviderFacts,
    ProviderUnreachable,
    TokenDescriber,
)
from paygrid.connectors.registry import (
    BUILTIN_PROVIDERS,
    BUILTIN_SIMULATOR,
    ProviderCatalog,
    no_connector,
)
from paygrid.db import connector_accounts as accounts_db
from paygrid.db import routing_rules as rules_db
from paygrid.db.executor import Executor
from paygrid.db.pagination import PageRequest
from paygrid.domain import routing as domain
from paygrid.domain.errors import (
    CapabilityNotSupported,
    InvalidAmount,
    InvalidRequest,
    ProviderUnavailable,
    ResourceMissing,
)
from paygrid.ids import new_id
from paygrid.money import MAX_AMOUNT
from paygrid.schemas.common import DeletedObject, RowLike
from paygrid.schemas.connector_accounts import (
    Destination,
    RoutingRule,
    RoutingRuleCreate,
    RoutingRuleUpdate,
    RuleConditions,
)
from paygrid.services import payment_methods
from paygrid.services.context import Deps, Tenant


@dataclass(frozen=True, slots=True)
class Target:
    """One place to send an attempt: a connector account, or the built-in simulator."""

    account_id: str | None
    facts: ProviderFacts

    @property
    def provider(self) -> str:
        return self.facts.name

    @property
    def capabilities(self) -> Capability:
        return self.facts.capabilities


BUILTIN = Target(None, BUILTIN_PROVIDERS.facts(BUILTIN_SIMULATOR))


async def targets_for(
    conn: Executor,
    tenant: Tenant,
    ctx: domain.RoutingContext,
    providers: ProviderCatalog = BUILTIN_PROVIDERS,
) -> list[Target]:
    """The accounts to try for a payment, in order. A test-mode merchant without any
    connector account for the currency gets the built-in simulator. ``providers`` is the
    registry's (``deps.connectors.providers``)."""
    accounts, rules = await rules_db.routing_inputs(conn, tenant.merchant_id, tenant.livemode)
    facts = {row["id"]: providers.facts(row["provider"]) for row in accounts}
    ids, _ = domain.route(
        [rule_of(row) for row in rules],
        [_account_of(row, facts[row["id"]]) for row in accounts],
        ctx,
    )
    targets = _within_provider_limits([Target(i, facts[i]) for i in ids], ctx)
    if not targets and not tenant.livemode:
        targets = [BUILTIN]
    if not targets:
        raise no_connector(tenant.livemode)
    return targets


def _within_provider_limits(targets: list[Target], ctx: domain.RoutingContext) -> list[Target]:
    """The targets whose provider takes this amount. An account whose provider is known to
    refuse it is passed over; when that leaves none, the first refusal is the answer, before
    any provider is called."""
    refusals = [t.facts.refusal_of(ctx.amount, ctx.currency) for t in targets]
    usable = [t for t, refusal in zip(targets, refusals, strict=True) if refusal is None]
    first = next((r for r in refusals if r is not None), None)
    if first is not None and not usable:
        raise InvalidAmount(first.message, param="amount", code=first.code)
    return usable


def _account_of(row: asyncpg.Record, facts: ProviderFacts) -> domain.Account:
    return domain.Account(
        row["id"],
        facts.name,
        frozenset(row["currencies"]),
        preferred_currencies=facts.preferred_currencies,
        rank=facts.default_rank,
    )


async def target_of(
    conn: Executor, account_id: str | None, providers: ProviderCatalog = BUILTIN_PROVIDERS
) -> Target:
    if account_id is None:
        return BUILTIN
    row = await accounts_db.get_account_unscoped(conn, account_id)
    assert row is not None
    return Target(account_id, providers.facts(row["provider"]))


def rule_of(row: asyncpg.Record) -> domain.Rule:
    conditions = RuleConditions.model_validate(row["conditions"], strict=False)
    amount = conditions.amount
    return domain.Rule(
        id=row["id"],
        conditions=domain.Conditions(
            currencies=_upper_set(conditions.currency),
            amount_gte=amount.gte if amount else None,
            amount_lte=amount.lte if amount else None,
            payment_method_types=(
                frozenset(conditions.payment_method_type)
                if conditions.payment_method_type
                else None
            ),
            card_countries=_upper_set(conditions.card_country),
            metadata=conditions.metadata,
        ),
        destinations=tuple(
            (d["connector_account"], int(d.get("weight", 1))) for d in row["destinations"]
        ),
        weighted=row["split"] == "weighted",
    )


def _upper_set(values: list[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(v.upper() for v in values)


async def create_rule(deps: Deps, tenant: Tenant, params: RoutingRuleCreate) -> RoutingRule:
    await _check_destinations(deps.pool, tenant, params.destinations)
    row = await rules_db.insert_rule(
        deps.pool,
        {
            "id": new_id("rr"),
            "merchant_id": tenant.merchant_id,
            "livemode": tenant.livemode,
            "name": params.name,
            "priority": params.priority,
            "conditions": _conditions_json(params.conditions),
            "destinations": [d.model_dump() for d in params.destinations],
            "split": params.split,
        },
    )
    return RoutingRule.from_row(row)


async def get_rule(deps: Deps, tenant: Tenant, rule_id: str) -> RoutingRule:
    return RoutingRule.from_row(await _get(deps.pool, tenant, rule_id))


async def list_rules(
    deps: Deps, tenant: Tenant, page: PageRequest
) -> tuple[list[RoutingRule], bool]:
    rows, has_more = await rules_db.list_rules(deps.pool, tenant.merchant_id, tenant.livemode, page)
    return [RoutingRule.from_row(row) for row in rows], has_more


async def update_rule(
    deps: Deps, tenant: Tenant, rule_id: str, params: RoutingRuleUpdate
) -> RoutingRule:
    await _get(deps.pool, tenant, rule_id)
    sent = params.model_dump(exclude_unset=True)
    changes: dict[str, Any] = {}
    if "name" in sent:
        changes["name"] = params.name
    if params.priority is not None:
        changes["priority"] = params.priority
    if params.conditions is not None:
        changes["conditions"] = _conditions_json(params.conditions)
    if params.destinations is not None:
        await _check_destinations(deps.pool, tenant, params.destinations)
        changes["destinations"] = [d.model_dump() for d in params.destinations]
    if params.split is not None:
        changes["split"] = params.split
    if not changes:
        return await get_rule(deps, tenant, rule_id)
    return RoutingRule.from_row(await rules_db.update_rule(deps.pool, rule_id, changes))


async def delete_rule(deps: Deps, tenant: Tenant, rule_id: str) -> DeletedObject:
    await _get(deps.pool, tenant, rule_id)
    await rules_db.delete_rule(deps.pool, rule_id)
    return DeletedObject(id=rule_id, object="routing_rule")


def _conditions_json(conditions: RuleConditions) -> dict[str, Any]:
    """The conditions to store, once their amounts are within what any currency allows
    (larger ones match no payment, and past 2^64 cannot even be stored as JSON)."""
    for bound in ("gte", "lte"):
        value = getattr(conditions.amount, bound) if conditions.amount else None
        if value is not None and value > MAX_AMOUNT:
            raise InvalidAmount(
                f"conditions.amount.{bound} must be at most {MAX_AMOUNT}, the largest amount "
                "any currency allows.",
                param=f"conditions[amount][{bound}]",
                code="amount_too_large",
            )
    return conditions.model_dump(exclude_none=True)


async def _check_destinations(
    pool: asyncpg.Pool, tenant: Tenant, destinations: list[Destination]
) -> None:
    seen: set[str] = set()
    for index, destination in enumerate(destinations):
        account_id = destination.connector_account
        if account_id in seen:
            raise InvalidRequest(
                f"Connector account '{account_id}' is listed twice.",
                param=f"destinations[{index}].connector_account",
            )
        seen.add(account_id)
        row = await accounts_db.get_account(pool, tenant.merchant_id, tenant.livemode, account_id)
        if row is None:
            raise InvalidRequest(
                f"No such connector account: '{account_id}'",
                param=f"destinations[{index}].connector_account",
                code="resource_missing",
            )


async def _get(pool: asyncpg.Pool, tenant: Tenant, rule_id: str) -> asyncpg.Record:
    row = await rules_db.get_rule(pool, tenant.merchant_id, tenant.livemode, rule_id)
    if row is None:
        raise ResourceMissing(f"No such routing rule: '{rule_id}'", param="id")
    return row


# -- choosing where one payment goes ----------------------------------------------------------


@dataclass(slots=True)
class Choice:
    """Where the next attempt goes, with the payment method to use there. ``new_method`` is
    a payment-method row to write with the attempt (a card tokenized just now);
    ``skipped`` are accounts that could not be reached on the way (recorded as closed
    attempts, so every failed-over account shows in the payment's ``attempts``)."""

    target: Target
    method: RowLike | None
    new_method: dict[str, Any] | None = None
    skipped: list[Target] = field(default_factory=list)


def unusable_reason(
    source: payment_methods.MethodSource,
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
        case payment_methods.RawCard():
            if Capability.CARD_TOKENIZATION not in caps:
                return f"{target.provider} does not accept raw card data"
        case payment_methods.MagicMethod():
            if target.provider != BUILTIN_SIMULATOR:
                return "test magic payment methods work with the simulator only"
        case payment_methods.ProviderTokenMethod(account_id=account_id):
            if account_id != target.account_id:
                return "a provider token can only be charged at its own connector account"
        case payment_methods.SavedMethod(row=row):
            bound = row["connector_account_id"]
            if bound is not None and bound != target.account_id:
                return "the payment method was saved at another connector account"
            if bound is None and target.provider != row["connector"]:
                return f"the payment method was saved at the {row['connector']} connector"
    return None


async def choose(
    deps: Deps,
    tenant: Tenant,
    targets: list[Target],
    source: payment_methods.MethodSource,
    *,
    manual_capture: bool,
    customer_id: str | None,
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
            method, new_method = await _method_at(
                deps, tenant, target, source, customer_id=customer_id, now=now
            )
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
    source: payment_methods.MethodSource,
    *,
    customer_id: str | None,
    now: datetime,
) -> tuple[RowLike | None, dict[str, Any] | None]:
    match source:
        case None:
            return None, None
        case payment_methods.SavedMethod(row=saved):
            return saved, None
        case payment_methods.MagicMethod(magic_id=magic_id):
            token = await deps.connectors.simulator.tokenize_magic(magic_id)
            assert token is not None  # source_of only accepts known magic ids
        case payment_methods.ProviderTokenMethod(token=provider_token):
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
        case payment_methods.RawCard(details=details, param_prefix=prefix):
            connector = await deps.connectors.connector_for(deps.pool, target.account_id)
            assert isinstance(connector, CardTokenizer)  # CARD_TOKENIZATION was checked
            async with deps.connectors.guard(target.account_id, "tokenize"):
                token = await payment_methods.tokenize_at(connector, details, param_prefix=prefix)
    new_row = payment_methods.new_method_row(
        tenant, token, target.provider, now, target.account_id, customer_id
    )
    return new_row, new_row


def skipped_attempt_row(
    payment_id: str, target: Target, amount: int, now: datetime
) -> dict[str, Any]:
    """A closed attempt for an account routing could not reach."""
    return {
        "id": new_id("att"),
        "payment_id": payment_id,
        "operation": "authorize",
        "connector": target.provider,
        "connector_account_id": target.account_id,
        "status": "unreachable",
        "amount": amount,
        "error_code": "provider_unavailable",
        "error_message": "The provider could not be reached.",
        "created_at": now,
        "completed_at": now,
    }
