"""Routing rules (CRUD) and the ordered connector accounts (targets) for one payment; the
payment core chooses among them (``services.payments.choice``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from paygrid.connectors.base import (
    Capability,
    ProviderFacts,
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
from paygrid.db.lookup_notices import ROUTING
from paygrid.db.pagination import PageRequest
from paygrid.db.routing_rules import RoutableAccount, RoutingRuleRow, RuleChanges, RuleTerms
from paygrid.dependencies import Deps
from paygrid.domain import routing as domain
from paygrid.domain.errors import (
    InvalidAmount,
    InvalidRequest,
    ResourceMissing,
)
from paygrid.ids import new_id
from paygrid.lookup_cache import UNCACHED, LookupCache, Lookups
from paygrid.money import MAX_AMOUNT
from paygrid.schemas.common import DeletedObject
from paygrid.schemas.connector_accounts import (
    Destination,
    RoutingRule,
    RoutingRuleCreate,
    RoutingRuleUpdate,
    RuleConditions,
)
from paygrid.services.context import Tenant


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
    lookups: Lookups = UNCACHED,
) -> list[Target]:
    """The accounts to try for a payment, in order. A test-mode merchant without any
    connector account for the currency gets the built-in simulator. ``providers`` is the
    registry's (``deps.connectors.providers``); ``lookups`` caches the tenant's accounts and
    rules for a few seconds (``deps.lookups``; any write to them drops it)."""
    inputs: LookupCache[tuple[str, bool], tuple[list[RoutableAccount], list[RuleTerms]]]
    inputs = lookups.cache(ROUTING)
    key = (tenant.merchant_id, tenant.livemode)
    accounts, rules = await inputs.get_or_load(key, lambda: rules_db.routing_inputs(conn, *key))
    facts = {account.id: providers.facts(account.provider) for account in accounts}
    ids, _ = domain.route(
        [rule_of(rule) for rule in rules],
        [_account_of(account, facts[account.id]) for account in accounts],
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


def _account_of(account: RoutableAccount, facts: ProviderFacts) -> domain.Account:
    return domain.Account(
        account.id,
        facts.name,
        frozenset(account.currencies),
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
    return Target(account_id, providers.facts(row.provider))


def rule_of(rule: RuleTerms) -> domain.Rule:
    conditions = RuleConditions.model_validate(rule.conditions, strict=False)
    amount = conditions.amount
    return domain.Rule(
        id=rule.id,
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
            (d["connector_account"], int(d.get("weight", 1))) for d in rule.destinations
        ),
        weighted=rule.split == "weighted",
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
    changes: RuleChanges = {}
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


async def _get(pool: asyncpg.Pool, tenant: Tenant, rule_id: str) -> RoutingRuleRow:
    row = await rules_db.get_rule(pool, tenant.merchant_id, tenant.livemode, rule_id)
    if row is None:
        raise ResourceMissing(f"No such routing rule: '{rule_id}'", param="id")
    return row
