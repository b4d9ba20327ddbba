"""Routing rule rows."""

from __future__ import annotations

from typing import Any

import asyncpg

from paygrid.db.executor import Executor
from paygrid.db.pagination import Filters, PageRequest, fetch_page

Row = asyncpg.Record
_UPDATABLE = frozenset({"name", "priority", "conditions", "destinations", "split"})


async def insert_rule(conn: Executor, values: dict[str, Any]) -> Row:
    columns = ", ".join(values)
    params = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    row = await conn.fetchrow(
        f"INSERT INTO routing_rules ({columns}) VALUES ({params}) RETURNING *", *values.values()
    )
    assert row is not None
    return row


async def get_rule(conn: Executor, merchant_id: str, livemode: bool, rule_id: str) -> Row | None:
    return await conn.fetchrow(
        "SELECT * FROM routing_rules WHERE id = $1 AND merchant_id = $2 AND livemode = $3",
        rule_id,
        merchant_id,
        livemode,
    )


async def update_rule(conn: Executor, rule_id: str, changes: dict[str, Any]) -> Row:
    assert set(changes) <= _UPDATABLE
    assignments = ", ".join(f"{column} = ${i}" for i, column in enumerate(changes, start=2))
    row = await conn.fetchrow(
        f"UPDATE routing_rules SET {assignments}, updated_at = now() WHERE id = $1 RETURNING *",
        rule_id,
        *changes.values(),
    )
    assert row is not None
    return row


async def delete_rule(conn: Executor, rule_id: str) -> None:
    await conn.execute("DELETE FROM routing_rules WHERE id = $1", rule_id)


async def list_rules(
    conn: Executor, merchant_id: str, livemode: bool, page: PageRequest
) -> tuple[list[Row], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    return await fetch_page(conn, "routing_rules", filters, page)


async def routing_inputs(
    conn: Executor, merchant_id: str, livemode: bool
) -> tuple[list[Row], list[Row]]:
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
    accounts = [row for row in rows if row["kind"] == "account"]
    rules = [row for row in rows if row["kind"] == "rule"]
    return accounts, rules
