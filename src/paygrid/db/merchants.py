"""Merchants and their API keys."""

from __future__ import annotations

import asyncpg

from paygrid.db.executor import Connection, Executor
from paygrid.db.pagination import Filters, PageRequest, fetch_page

Row = asyncpg.Record


async def insert_merchant(conn: Connection, merchant_id: str, name: str) -> Row:
    row = await conn.fetchrow(
        "INSERT INTO merchants (id, name) VALUES ($1, $2) RETURNING *", merchant_id, name
    )
    assert row is not None
    return row


async def get_merchant(conn: Executor, merchant_id: str) -> Row | None:
    return await conn.fetchrow("SELECT * FROM merchants WHERE id = $1", merchant_id)


async def list_merchants(conn: Executor) -> list[Row]:
    return list(await conn.fetch("SELECT * FROM merchants ORDER BY id"))


async def insert_api_key(
    conn: Executor,
    *,
    key_id: str,
    merchant_id: str,
    kind: str,
    livemode: bool,
    lookup_prefix: str,
    key_hash: bytes,
    last4: str,
    name: str | None,
    scopes: list[str] | None = None,
) -> Row:
    row = await conn.fetchrow(
        "INSERT INTO api_keys (id, merchant_id, kind, livemode, lookup_prefix, key_hash, last4,"
        " name, scopes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *",
        key_id,
        merchant_id,
        kind,
        livemode,
        lookup_prefix,
        key_hash,
        last4,
        name,
        scopes or [],
    )
    assert row is not None
    return row


async def find_keys_by_prefix(pool: asyncpg.Pool, lookup_prefix: str) -> list[Row]:
    return list(
        await pool.fetch(
            "SELECT id, merchant_id, kind, livemode, key_hash, revoked_at, scopes FROM api_keys"
            " WHERE lookup_prefix = $1",
            lookup_prefix,
        )
    )


async def touch_key(pool: asyncpg.Pool, key_id: str) -> None:
    await pool.execute("UPDATE api_keys SET last_used_at = now() WHERE id = $1", key_id)


async def list_keys(conn: Executor, merchant_id: str) -> list[Row]:
    return list(
        await conn.fetch("SELECT * FROM api_keys WHERE merchant_id = $1 ORDER BY id", merchant_id)
    )


async def revoke_key(conn: Executor, key_id: str) -> Row | None:
    return await conn.fetchrow(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING *",
        key_id,
    )


async def get_key(conn: Executor, merchant_id: str, livemode: bool, key_id: str) -> Row | None:
    return await conn.fetchrow(
        "SELECT * FROM api_keys WHERE id = $1 AND merchant_id = $2 AND livemode = $3",
        key_id,
        merchant_id,
        livemode,
    )


async def list_keys_page(
    conn: Executor, merchant_id: str, livemode: bool, page: PageRequest
) -> tuple[list[Row], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    return await fetch_page(conn, "api_keys", filters, page)


async def live_mode_in_use(conn: Executor) -> bool:
    """Whether live payments can be processed: an enabled live-mode connector account
    exists (serve warns about plain HTTP then). Every merchant has live keys from the
    start, so keys alone say nothing."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM connector_accounts WHERE livemode AND status = 'enabled')"
        )
    )
