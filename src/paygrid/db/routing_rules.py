"""Routing rule rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

import asyncpg

from paygrid.db.executor import Executor
from paygrid.db.lookup_notices import ROUTING, notifying
from paygrid.db.pagination import Filters, PageRequest, fetch_page

Row = asyncpg.Record
_UPDATABLE = frozenset({"name", "priority", "conditions", "destinations", "split"})


@dataclass(frozen=True, slots=True)
class RoutingRuleRow:
    """One ``routing_rules`` row; ``conditions`` and ``destinations`` as stored (JSON)."""

    id: str
    merchant_id: str
    livemode: bool
    name: str | None
    priority: int
    conditions: dict[str, Any]
    destinations: list[dict[str, Any]]
    split: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_record(cls, record: Row) -> RoutingRuleRow:
        return cls(**dict(record.items()))


class RuleChanges(TypedDict, total=False):
    """The columns an update may change."""

    name: str | None
    priority: int
    conditions: dict[str, Any]
    destinations: list[dict[str, Any]]
    split: str


@dataclass(frozen=True, slots=True)
class RuleTerms:
    """A rule as routing reads it: what it matches and where it sends."""

    id: str
    conditions: dict[str, Any]
    destinations: list[dict[str, Any]]
    split: str


@dataclass(frozen=True, slots=True)
class RoutableAccount:
    """An enabled connector account as routing reads it."""

    id: str
    provider: str
    currencies: list[str]


async def insert_rule(conn: Executor, values: dict[str, Any]) -> RoutingRuleRow:
    columns = ", ".join(values)
    params = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    row = await conn.fetchrow(
        notifying(f"INSERT INTO routing_rules ({columns}) VALUES ({params}) RETURNING *", ROUTING),
        *values.values(),
    )
    assert row is not None
    return RoutingRuleRow.from_record(row)


async def get_rule(
    conn: Executor, merchant_id: str, livemode: bool, rule_id: str
) -> RoutingRuleRow | None:
    record = await conn.fetchrow(
        "SELECT * FROM routing_rules WHERE id = $1 AND merchant_id = $2 AND livemode = $3",
        rule_id,
        merchant_id,
        livemode,
    )
    return None if record is None else RoutingRuleRow.from_record(record)


async def update_rule(conn: Executor, rule_id: str, changes: RuleChanges) -> RoutingRuleRow:
    assert set(changes) <= _UPDATABLE
    assignments = ", ".join(f"{column} = ${i}" for i, column in enumerate(changes, start=2))
    row = await conn.fetchrow(
        notifying(
            f"UPDATE routing_rules SET {assignments}, updated_at = now() WHERE id = $1 RETURNING *",
            ROUTING,
        ),
        rule_id,
        *changes.values(),
    )
    assert row is not None
    return RoutingRuleRow.from_record(row)


async def delete_rule(conn: Executor, rule_id: str) -> None:
    await conn.execute(
        notifying("DELETE FROM routing_rules WHERE id = $1 RETURNING id", ROUTING), rule_id
    )


async def list_rules(
    conn: Executor, merchant_id: str, livemode: bool, page: PageRequest
) -> tuple[list[RoutingRuleRow], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    records, has_more = await fetch_page(conn, "routing_rules", filters, page)
    return [RoutingRuleRow.from_record(r) for r in records], has_more


async def routing_inputs(
    conn: Executor, merchant_id: str, livemode: bool
) -> tuple[list[RoutableAccount], list[RuleTerms]]:
    """A tenant's enabled connector accounts (oldest first) and its rules (in priority
    order), in one round trip: routing runs on every confirm."""
    rows = await conn.fetch(
        "SELECT 'account' AS kind, id, provider, currencies, NULL::jsonb AS conditions,"
        " NULL::jsonb AS destinations, NULL::text AS split, 0 AS priority"
        " FROM connector_accounts WHERE merchant_id = $1 AND livemode = $2"
        " AND status = 'enabled'"
        " UNION ALL"
        " SELECT 'rule', id, NULL, NULL, conditions, destinations, split, priority"
        " FROM routing_rules WHERE merchant_id = $1 AND livemode = $2"
        " ORDER BY kind, priority, id",
        merchant_id,
        livemode,
    )
    accounts = [
        RoutableAccount(row["id"], row["provider"], list(row["currencies"]))
        for row in rows
        if row["kind"] == "account"
    ]
    rules = [
        RuleTerms(row["id"], row["conditions"], row["destinations"], row["split"])
        for row in rows
        if row["kind"] == "rule"
    ]
    return accounts, rules
