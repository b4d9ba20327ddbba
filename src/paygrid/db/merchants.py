"""Merchants and their API keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import asyncpg

from paygrid.db.executor import Connection, Executor
from paygrid.db.lookup_notices import API_KEYS, notifying
from paygrid.db.pagination import Filters, PageRequest, fetch_page

Row = asyncpg.Record


@dataclass(frozen=True, slots=True)
class MerchantRow:
    """One ``merchants`` row."""

    id: str
    name: str
    created_at: datetime
    # The IANA zone of the merchant's daily reconciliation run (0027_reconciliation).
    timezone: str = "UTC"

    @classmethod
    def from_record(cls, record: Row) -> MerchantRow:
        return cls(**dict(record.items()))


@dataclass(frozen=True, slots=True)
class ApiKeyRow:
    """One ``api_keys`` row; ``key_hash`` is the key's HMAC, never the key."""

    id: str
    merchant_id: str
    kind: Literal["secret", "publishable"]
    livemode: bool
    lookup_prefix: str
    key_hash: bytes
    last4: str
    name: str | None
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    scopes: list[str]

    @classmethod
    def from_record(cls, record: Row) -> ApiKeyRow:
        return cls(**{**dict(record.items()), "key_hash": bytes(record["key_hash"])})


def _key(record: Row | None) -> ApiKeyRow | None:
    return None if record is None else ApiKeyRow.from_record(record)


async def insert_merchant(conn: Connection, merchant_id: str, name: str) -> MerchantRow:
    row = await conn.fetchrow(
        "INSERT INTO merchants (id, name) VALUES ($1, $2) RETURNING *", merchant_id, name
    )
    assert row is not None
    return MerchantRow.from_record(row)


async def get_merchant(conn: Executor, merchant_id: str) -> MerchantRow | None:
    record = await conn.fetchrow("SELECT * FROM merchants WHERE id = $1", merchant_id)
    return None if record is None else MerchantRow.from_record(record)


async def set_timezone(
    conn: Connection, merchant_id: str, timezone: str
) -> tuple[MerchantRow, str] | None:
    """Set the merchant's time zone under a row lock; the row after, and the zone before."""
    before: str | None = await conn.fetchval(
        "SELECT timezone FROM merchants WHERE id = $1 FOR UPDATE", merchant_id
    )
    if before is None:
        return None
    record = await conn.fetchrow(
        "UPDATE merchants SET timezone = $2 WHERE id = $1 RETURNING *", merchant_id, timezone
    )
    assert record is not None
    return MerchantRow.from_record(record), before


async def merchant_name(conn: Executor, merchant_id: str) -> str | None:
    name: str | None = await conn.fetchval("SELECT name FROM merchants WHERE id = $1", merchant_id)
    return name


async def list_merchants(conn: Executor) -> list[MerchantRow]:
    records = await conn.fetch("SELECT * FROM merchants ORDER BY id")
    return [MerchantRow.from_record(r) for r in records]


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
) -> ApiKeyRow:
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
    return ApiKeyRow.from_record(row)


async def find_keys_by_prefix(pool: asyncpg.Pool, lookup_prefix: str) -> list[ApiKeyRow]:
    records = await pool.fetch("SELECT * FROM api_keys WHERE lookup_prefix = $1", lookup_prefix)
    return [ApiKeyRow.from_record(r) for r in records]


async def touch_key(pool: asyncpg.Pool, key_id: str, now: datetime) -> None:
    """Record that the key was used at ``now`` (the caller's clock)."""
    await pool.execute("UPDATE api_keys SET last_used_at = $2 WHERE id = $1", key_id, now)


async def list_keys(conn: Executor, merchant_id: str) -> list[ApiKeyRow]:
    records = await conn.fetch(
        "SELECT * FROM api_keys WHERE merchant_id = $1 ORDER BY id", merchant_id
    )
    return [ApiKeyRow.from_record(r) for r in records]


# Revocation takes effect at once (``revoked_at IS NOT NULL``); the time is only recorded,
# so it is the database's.
async def revoke_key(conn: Executor, key_id: str) -> ApiKeyRow | None:
    record = await conn.fetchrow(
        notifying(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1"
            " RETURNING *",
            API_KEYS,
        ),
        key_id,
    )
    return _key(record)


async def get_key(
    conn: Executor, merchant_id: str, livemode: bool, key_id: str
) -> ApiKeyRow | None:
    record = await conn.fetchrow(
        "SELECT * FROM api_keys WHERE id = $1 AND merchant_id = $2 AND livemode = $3",
        key_id,
        merchant_id,
        livemode,
    )
    return _key(record)


async def list_keys_page(
    conn: Executor, merchant_id: str, livemode: bool, page: PageRequest
) -> tuple[list[ApiKeyRow], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    records, has_more = await fetch_page(conn, "api_keys", filters, page)
    return [ApiKeyRow.from_record(r) for r in records], has_more


async def live_mode_in_use(conn: Executor) -> bool:
    """Whether live payments can be processed: an enabled live-mode connector account
    exists (serve warns about plain HTTP then). Every merchant has live keys from the
    start, so keys alone say nothing."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM connector_accounts WHERE livemode AND status = 'enabled')"
        )
    )
