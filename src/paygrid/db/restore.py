"""The queries of ``paygrid restore``: emptying the database for the archive (every schema
but the fence's, which backups leave out) and what the re-sync asks of the restored data."""

from __future__ import annotations

from collections.abc import Sequence

from paygrid.db.connector_accounts import ConnectorAccountRow
from paygrid.db.executor import Connection, Executor

FENCE_SCHEMA = "paygrid_fence"
# The default schema that CREATE DATABASE makes and pg_dump (15+) assumes is there.
DEFAULT_SCHEMA = "public"


async def replaceable_schemas(conn: Executor) -> list[str]:
    """The schemas a restore replaces: all but PostgreSQL's own and the fence's."""
    rows = await conn.fetch(
        "SELECT nspname FROM pg_namespace"
        " WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'"
        " AND nspname <> $1 ORDER BY nspname",
        FENCE_SCHEMA,
    )
    return [str(r["nspname"]) for r in rows]


async def empty_schemas(conn: Connection, schemas: Sequence[str]) -> None:
    """Drop ``schemas`` with everything in them (extensions included) and re-create the
    default schema empty, in one transaction: the database is then as ``CREATE DATABASE``
    made it, with the fence still in place."""
    async with conn.transaction():
        for schema in schemas:
            await conn.execute(f'DROP SCHEMA "{_quoted(schema)}" CASCADE')
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {DEFAULT_SCHEMA}")


def _quoted(name: str) -> str:
    return name.replace('"', '""')


async def all_accounts(conn: Executor) -> list[ConnectorAccountRow]:
    """Every connector account of every merchant and mode, disabled ones too (a charge made
    before an account was disabled is still the merchant's)."""
    records = await conn.fetch("SELECT * FROM connector_accounts ORDER BY created_at, id")
    return [ConnectorAccountRow.from_record(r) for r in records]


async def known_references(conn: Executor, account_id: str, references: Sequence[str]) -> set[str]:
    """Which of these provider references (or attempt ids) the account's attempts have."""
    if not references:
        return set()
    rows = await conn.fetch(
        "SELECT coalesce(provider_reference, id) AS reference FROM payment_attempts"
        " WHERE connector_account_id = $1"
        " AND (provider_reference = ANY($2::text[]) OR id = ANY($2::text[]))",
        account_id,
        list(references),
    )
    return {str(r["reference"]) for r in rows}


async def existing_payments(conn: Executor, payment_ids: Sequence[str]) -> set[str]:
    """Which of these payments exist."""
    if not payment_ids:
        return set()
    rows = await conn.fetch("SELECT id FROM payments WHERE id = ANY($1::text[])", list(payment_ids))
    return {str(r["id"]) for r in rows}
