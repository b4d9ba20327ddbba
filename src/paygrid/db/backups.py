"""SQL of backups: the snapshot a backup reads, what it counts and checksums, the audit
chain heads, the ``backups`` catalog (migration 0028) and the scratch databases that
``paygrid backup verify`` restores into."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import structlog

from paygrid.db import audit as audit_db
from paygrid.db.executor import Connection, Executor
from paygrid.db.url import asyncpg_url
from paygrid.domain import audit_chain

log = structlog.get_logger("paygrid.backups")

# Schemas a backup leaves out: the write fence of ``paygrid restore`` (migration 0029)
# must survive the restore it guards.
EXCLUDED_SCHEMAS: Final = ("paygrid_fence",)
SCRATCH_PREFIX: Final = "paygrid_verify_"
# The advisory lock a scratch database's owner holds: (this class, hashtext(its name)). A
# hash collision can only keep an abandoned database one sweep longer, never drop one in use.
SCRATCH_LOCK_CLASS: Final = 0x7061_7976  # "payv"
_LOCK: Final = "SELECT pg_advisory_lock($1, hashtext($2))"
_TRY_LOCK: Final = "SELECT pg_try_advisory_lock($1, hashtext($2))"
_UNLOCK: Final = "SELECT pg_advisory_unlock($1, hashtext($2))"

# Row text is compared between two servers (or sessions): fix every setting it depends on.
_TEXT_SETTINGS: Final = (
    "SET LOCAL TimeZone = 'UTC'",
    "SET LOCAL DateStyle = 'ISO, MDY'",
    "SET LOCAL IntervalStyle = 'postgres'",
    "SET LOCAL extra_float_digits = 3",
    "SET LOCAL bytea_output = 'hex'",
)


class VerifyStatus(StrEnum):
    UNVERIFIED = "unverified"
    PASSED = "passed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class TableCount:
    name: str  # schema-qualified
    rows: int
    checksum: str  # 16 hex digits


@dataclass(frozen=True, slots=True)
class ChainHeadRow:
    merchant_id: str
    seq: int
    last_id: str
    hash: bytes
    unsealed: int


@dataclass(frozen=True, slots=True)
class BackupRow:
    dump_sha256: str
    file_name: str
    created_at: datetime
    bytes: int
    verify_status: VerifyStatus
    verified_at: datetime | None
    failure: str | None


@asynccontextmanager
async def snapshot(conn: Connection) -> AsyncIterator[str]:
    """A read-only repeatable-read transaction on ``conn`` whose snapshot is exported for
    ``pg_dump --snapshot`` (valid until the block ends): what the caller reads inside the
    block is exactly what the dump holds."""
    async with consistent_read(conn):
        yield str(await conn.fetchval("SELECT pg_export_snapshot()"))


@asynccontextmanager
async def consistent_read(conn: Connection) -> AsyncIterator[None]:
    """A read-only repeatable-read transaction with the settings row text depends on."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        for setting in _TEXT_SETTINGS:
            await conn.execute(setting)
        yield


# How long the full-table reads of a backup or a verify may take (1M payments: ~1 min here).
FULL_SCAN_TIMEOUT_SECONDS = 6 * 3600


async def table_counts(conn: Executor) -> list[TableCount]:
    """Every user table's row count and order-independent content checksum: the sum,
    modulo 2**64, of the first 64 bits of md5 of each row's text. One scan per table."""
    tables = await conn.fetch(
        "SELECT n.nspname || '.' || c.relname AS name, format('%I.%I', n.nspname, c.relname)"
        " AS quoted FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind = 'r' AND n.nspname <> ALL($1::text[])"
        " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        " AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'"
        " ORDER BY 1",
        list(EXCLUDED_SCHEMAS),
    )
    if not tables:
        return []
    parts = [
        f"SELECT {i} AS i, count(*) AS rows, coalesce(sum(('x' || left(md5(t::text), 16))"
        f"::bit(64)::bigint::numeric), 0)::text AS total FROM {table['quoted']} AS t"
        for i, table in enumerate(tables)
    ]
    # One scan of every table: minutes on a large database, far past the pools' 30 s
    # command timeout (which guards requests, not this).
    rows = await conn.fetch(" UNION ALL ".join(parts), timeout=FULL_SCAN_TIMEOUT_SECONDS)
    by_index = {int(r["i"]): r for r in rows}
    return [
        TableCount(
            str(table["name"]),
            int(by_index[i]["rows"]),
            f"{int(by_index[i]['total']) % 2**64:016x}",
        )
        for i, table in enumerate(tables)
    ]


async def chain_heads(conn: Executor) -> list[ChainHeadRow]:
    """Where each merchant's audit chain ends, and how many entries wait to be sealed."""
    heads = []
    for merchant_id in await audit_db.all_merchants(conn):
        head = await audit_db.chain_head(conn, merchant_id, audit_chain.GENESIS)
        unsealed = await audit_db.count_unsealed(conn, merchant_id)
        heads.append(ChainHeadRow(merchant_id, head.seq, head.last_id, head.hash, unsealed))
    return heads


async def describe(conn: Executor) -> tuple[str, str | None]:
    """The database's name and its schema (alembic) revision."""
    row = await conn.fetchrow(
        "SELECT current_database() AS name, (SELECT version_num FROM alembic_version LIMIT 1)"
        " AS revision"
    )
    assert row is not None
    return str(row["name"]), row["revision"]


def scratch_url(url: str, database: str) -> str:
    """``url`` pointing at another database of the same server."""
    parts = urlsplit(asyncpg_url(url))
    return urlunsplit(parts._replace(path="/" + database))


@asynccontextmanager
async def scratch_database(url: str) -> AsyncIterator[str]:
    """An empty scratch database on ``url``'s server, dropped on leaving; its name is
    yielded. Scratch databases that a killed ``backup verify`` left behind are swept first.

    How a sweep tells abandoned from in use: the verify that owns a scratch database holds
    a session advisory lock named after it, on the connection that created it, from before
    it exists until after it is dropped. A scratch database whose lock can be taken has no
    live owner (a killed process's session, and with it the lock, ended with it). Advisory
    locks belong to one database, so a scratch database's name carries the OID of the
    database its owner is connected to, and a sweep only looks at its own database's."""
    conn = await asyncpg.connect(asyncpg_url(url))
    try:
        prefix = await _own_prefix(conn)
        await _sweep_abandoned(conn, prefix)
        name = prefix + secrets.token_hex(6)
        await conn.execute(_LOCK, SCRATCH_LOCK_CLASS, name)
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        try:
            yield name
        finally:
            await _drop(conn, name)
    finally:
        await conn.close()  # and the lock with it


async def _own_prefix(conn: asyncpg.Connection) -> str:
    """``paygrid_verify_<oid>_``: the scratch databases of verifies connected to this one."""
    oid = await conn.fetchval("SELECT oid FROM pg_database WHERE datname = current_database()")
    return f"{SCRATCH_PREFIX}{oid}_"


async def _sweep_abandoned(conn: asyncpg.Connection, prefix: str) -> None:
    """Drop the scratch databases no running ``backup verify`` owns (their lock is free).
    An owner cannot appear for an existing name while the lock is ours: names are new, and
    locked before their database is created. One that cannot be dropped (another role's)
    is logged and left: the verify goes on."""
    names = await conn.fetch(
        "SELECT datname FROM pg_database WHERE starts_with(datname, $1)", prefix
    )
    for row in names:
        name = str(row["datname"])
        if await conn.fetchval(_TRY_LOCK, SCRATCH_LOCK_CLASS, name):
            try:
                await _drop(conn, name)
            except asyncpg.PostgresError as error:
                log.warning("backup.scratch_not_dropped", database=name, error=str(error))
            finally:
                await conn.execute(_UNLOCK, SCRATCH_LOCK_CLASS, name)


async def _drop(conn: asyncpg.Connection, name: str) -> None:
    if not name.startswith(SCRATCH_PREFIX):  # never drop anything else
        raise ValueError(f"{name} is not a scratch database")
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def record(
    conn: Executor,
    *,
    dump_sha256: str,
    file_name: str,
    created_at: datetime,
    size: int,
    recorded_at: datetime,
) -> None:
    """Add an archive file to the catalog; a file of that name with other content (a new
    archive under an old name) starts over as unverified."""
    await conn.execute(
        "INSERT INTO backups (file_name, dump_sha256, created_at, bytes, verify_status,"
        " recorded_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (file_name) DO UPDATE"
        " SET dump_sha256 = EXCLUDED.dump_sha256, created_at = EXCLUDED.created_at,"
        " bytes = EXCLUDED.bytes, verify_status = EXCLUDED.verify_status, verified_at = NULL,"
        " failure = NULL, recorded_at = EXCLUDED.recorded_at"
        " WHERE backups.dump_sha256 <> EXCLUDED.dump_sha256",
        file_name,
        dump_sha256,
        created_at,
        size,
        VerifyStatus.UNVERIFIED.value,
        recorded_at,
    )


async def mark_verified(
    conn: Executor, file_name: str, status: VerifyStatus, at: datetime, failure: str | None
) -> None:
    await conn.execute(
        "UPDATE backups SET verify_status = $2, verified_at = $3, failure = $4"
        " WHERE file_name = $1",
        file_name,
        status.value,
        at,
        failure,
    )


async def list_all(conn: Executor) -> list[BackupRow]:
    rows = await conn.fetch(
        "SELECT dump_sha256, file_name, created_at, bytes, verify_status, verified_at, failure"
        " FROM backups ORDER BY created_at DESC"
    )
    return [
        BackupRow(
            str(r["dump_sha256"]),
            str(r["file_name"]),
            r["created_at"],
            int(r["bytes"]),
            VerifyStatus(r["verify_status"]),
            r["verified_at"],
            r["failure"],
        )
        for r in rows
    ]


async def newest(conn: Executor) -> tuple[datetime | None, datetime | None]:
    """When the newest verified backup and the newest backup of any status were taken."""
    row = await conn.fetchrow(
        "SELECT max(created_at) FILTER (WHERE verify_status = 'passed') AS verified,"
        " max(created_at) AS any FROM backups"
    )
    assert row is not None
    return row["verified"], row["any"]
