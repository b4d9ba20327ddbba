"""Connector account rows (credentials are ciphertext; the service encrypts and decrypts)."""

from __future__ import annotations

from typing import Any

import asyncpg

from paygrid.db.executor import Executor
from paygrid.db.pagination import Filters, PageRequest, fetch_page

Row = asyncpg.Record

_UPDATABLE = frozenset(
    {
        "name",
        "currencies",
        "api_base",
        "credentials",
        "secret_key_last4",
        "webhook_secret_last4",
        "status",
        "metadata",
    }
)


async def insert_account(conn: Executor, values: dict[str, Any]) -> Row:
    columns = ", ".join(values)
    params = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    row = await conn.fetchrow(
        f"INSERT INTO connector_accounts ({columns}) VALUES ({params}) RETURNING *",
        *values.values(),
    )
    assert row is not None
    return row


async def get_account(
    conn: Executor, merchant_id: str, livemode: bool, account_id: str
) -> Row | None:
    return await conn.fetchrow(
        "SELECT * FROM connector_accounts WHERE id = $1 AND merchant_id = $2 AND livemode = $3",
        account_id,
        merchant_id,
        livemode,
    )


async def get_account_unscoped(conn: Executor, account_id: str) -> Row | None:
    """For inbound provider webhooks and workers, which act on the account itself."""
    return await conn.fetchrow("SELECT * FROM connector_accounts WHERE id = $1", account_id)


async def update_account(conn: Executor, account_id: str, changes: dict[str, Any]) -> Row:
    assert set(changes) <= _UPDATABLE
    assignments = ", ".join(f"{column} = ${i}" for i, column in enumerate(changes, start=2))
    row = await conn.fetchrow(
        f"UPDATE connector_accounts SET {assignments}, updated_at = now()"
        " WHERE id = $1 RETURNING *",
        account_id,
        *changes.values(),
    )
    assert row is not None
    return row


async def list_accounts(
    conn: Executor,
    merchant_id: str,
    livemode: bool,
    page: PageRequest,
    *,
    provider: str | None = None,
    status: str | None = None,
) -> tuple[list[Row], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    filters.add_if("provider = $?", provider)
    filters.add_if("status = $?", status)
    return await fetch_page(conn, "connector_accounts", filters, page)


async def all_account_credentials(conn: Executor) -> list[Row]:
    return list(await conn.fetch("SELECT id, credentials FROM connector_accounts ORDER BY id"))
