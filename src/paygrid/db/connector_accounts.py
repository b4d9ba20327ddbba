"""Connector account rows (credentials are ciphertext; the service encrypts and decrypts)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import TypedDict

import asyncpg

from paygrid.db.executor import Executor
from paygrid.db.lookup_notices import ROUTING, notifying
from paygrid.db.pagination import Filters, PageRequest, fetch_page
from paygrid.domain.connector_accounts import ConnectorAccountStatus


@dataclass(frozen=True, slots=True)
class ConnectorAccountRow:
    """One ``connector_accounts`` row; ``credentials`` is ciphertext."""

    id: str
    merchant_id: str
    livemode: bool
    provider: str
    name: str | None
    currencies: list[str]
    api_base: str | None
    credentials: bytes
    secret_key_last4: str
    webhook_secret_last4: str | None
    status: ConnectorAccountStatus
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> ConnectorAccountRow:
        values = {f.name: record[f.name] for f in fields(cls)}
        return cls(
            **{
                **values,
                "currencies": list(record["currencies"]),
                "status": ConnectorAccountStatus(record["status"]),
            }
        )


@dataclass(frozen=True, slots=True)
class StoredCredentials:
    """An account's encrypted credentials, for re-encryption."""

    account_id: str
    credentials: bytes


def _row(record: asyncpg.Record | None) -> ConnectorAccountRow | None:
    return None if record is None else ConnectorAccountRow.from_record(record)


class SealedCredentials(TypedDict):
    """Credentials as stored: ciphertext, and the last characters shown back."""

    credentials: bytes
    secret_key_last4: str
    webhook_secret_last4: str | None


@dataclass(frozen=True, slots=True)
class NewConnectorAccount:
    """What an account is created with; the table fills in the rest (status ``enabled``,
    timestamps)."""

    id: str
    merchant_id: str
    livemode: bool
    provider: str
    name: str | None
    currencies: list[str]
    api_base: str | None
    metadata: dict[str, str]
    credentials: bytes
    secret_key_last4: str
    webhook_secret_last4: str | None


class AccountChanges(TypedDict, total=False):
    """The columns an update may change."""

    name: str | None
    currencies: list[str]
    api_base: str | None
    credentials: bytes
    secret_key_last4: str
    webhook_secret_last4: str | None
    status: ConnectorAccountStatus
    metadata: dict[str, str]


async def insert_account(conn: Executor, new: NewConnectorAccount) -> ConnectorAccountRow:
    values = {f.name: getattr(new, f.name) for f in fields(new)}
    columns = ", ".join(values)
    params = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    row = await conn.fetchrow(
        notifying(
            f"INSERT INTO connector_accounts ({columns}) VALUES ({params}) RETURNING *", ROUTING
        ),
        *values.values(),
    )
    assert row is not None
    return ConnectorAccountRow.from_record(row)


async def get_account(
    conn: Executor, merchant_id: str, livemode: bool, account_id: str
) -> ConnectorAccountRow | None:
    return _row(
        await conn.fetchrow(
            "SELECT * FROM connector_accounts WHERE id = $1 AND merchant_id = $2 AND livemode = $3",
            account_id,
            merchant_id,
            livemode,
        )
    )


async def get_account_unscoped(conn: Executor, account_id: str) -> ConnectorAccountRow | None:
    """For inbound provider webhooks and workers, which act on the account itself."""
    return _row(await conn.fetchrow("SELECT * FROM connector_accounts WHERE id = $1", account_id))


async def update_account(
    conn: Executor, account_id: str, changes: AccountChanges
) -> ConnectorAccountRow:
    assignments = ", ".join(f"{column} = ${i}" for i, column in enumerate(changes, start=2))
    row = await conn.fetchrow(
        notifying(
            f"UPDATE connector_accounts SET {assignments}, updated_at = now()"
            " WHERE id = $1 RETURNING *",
            ROUTING,
        ),
        account_id,
        *changes.values(),
    )
    assert row is not None
    return ConnectorAccountRow.from_record(row)


async def list_accounts(
    conn: Executor,
    merchant_id: str,
    livemode: bool,
    page: PageRequest,
    *,
    provider: str | None = None,
    status: ConnectorAccountStatus | None = None,
) -> tuple[list[ConnectorAccountRow], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    filters.add_if("provider = $?", provider)
    filters.add_if("status = $?", status)
    records, has_more = await fetch_page(conn, "connector_accounts", filters, page)
    return [ConnectorAccountRow.from_record(r) for r in records], has_more


async def all_account_credentials(conn: Executor) -> list[StoredCredentials]:
    records = await conn.fetch("SELECT id, credentials FROM connector_accounts ORDER BY id")
    return [StoredCredentials(r["id"], r["credentials"]) for r in records]


async def replace_credentials(
    conn: Executor, account_id: str, credentials: bytes, *, expected: bytes
) -> bool:
    """Compare-and-set: False when the credentials are no longer ``expected`` (replaced
    meanwhile)."""
    status = await conn.execute(
        "UPDATE connector_accounts SET credentials = $2 WHERE id = $1 AND credentials = $3",
        account_id,
        credentials,
        expected,
    )
    return bool(status == "UPDATE 1")
