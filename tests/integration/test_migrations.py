"""Migrations run from an empty database to head, back down, and up again."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator

import asyncpg
import pytest
from alembic import command

from paygrid.db import engine
from tests.conftest import scratch_database


@pytest.fixture
def empty_database(server_url: str) -> Iterator[str]:
    with scratch_database(server_url, "paygrid_migrations") as url:
        yield url


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT table_schema || '.' || table_name AS name FROM information_schema.tables"
            " WHERE table_schema IN ('public', 'simulator')"
        )
        return {r["name"] for r in rows}
    finally:
        await conn.close()


def test_upgrade_downgrade_upgrade(empty_database: str) -> None:
    assert asyncio.run(_tables(empty_database)) == set()
    engine.upgrade(empty_database)
    tables = asyncio.run(_tables(empty_database))
    assert {
        "public.payments",
        "public.refunds",
        "public.idempotency_keys",
        "public.events",
        "public.jobs",
        "public.workers",
        "simulator.charges",
    } <= tables
    command.downgrade(engine.alembic_config(empty_database), "base")
    assert asyncio.run(_tables(empty_database)) == {"public.alembic_version"}
    engine.upgrade(empty_database)
    assert asyncio.run(_tables(empty_database)) == tables


async def test_schema_constraints_refuse_bad_rows(pool: asyncpg.Pool) -> None:
    merchant = f"mer_{uuid.uuid4().hex}"
    await pool.execute("INSERT INTO merchants (id, name) VALUES ($1, 'constraints')", merchant)
    insert = (
        "INSERT INTO payments (id, merchant_id, livemode, status, amount, currency, capture_method,"
        " reference, amount_received) VALUES ($1, $2, false, 'succeeded', $3, 'USD', 'automatic', $1, $4)"
    )
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute(insert, "pay_zero", merchant, 0, 0)
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute(insert, "pay_over", merchant, 100, 101)
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await pool.execute(insert, "pay_fk", "mer_missing", 100, 100)
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute(
            "INSERT INTO payments (id, merchant_id, livemode, status, amount, currency,"
            " capture_method, reference) VALUES ('pay_st', $1, false, 'bogus', 1, 'USD', 'automatic', 'r')",
            merchant,
        )
    await pool.execute(
        "INSERT INTO idempotency_keys (merchant_id, livemode, key, request_method, request_path,"
        " request_hash, locked_at) VALUES ($1, false, 'k', 'POST', '/v1/payments', '\\x00', now())",
        merchant,
    )
    with pytest.raises(asyncpg.UniqueViolationError):
        await pool.execute(
            "INSERT INTO idempotency_keys (merchant_id, livemode, key, request_method, request_path,"
            " request_hash, locked_at) VALUES ($1, false, 'k', 'POST', '/v1/refunds', '\\x01', now())",
            merchant,
        )


def test_processes_starting_together_migrate_once_in_turn(empty_database: str) -> None:
    """Two processes migrating one empty database at once (a deployment's serve and worker
    starting together): the advisory lock of ``migrations/env.py`` makes them take turns,
    so both succeed and the schema is at head once."""
    script = "import sys; from paygrid.db import engine; engine.upgrade(sys.argv[1])"
    started = [
        subprocess.Popen(
            [sys.executable, "-c", script, empty_database],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=300)[0].decode() for process in started]
    assert [process.returncode for process in started] == [0, 0], outputs

    async def versions() -> list[str]:
        conn = await asyncpg.connect(empty_database)
        try:
            return [
                r["version_num"]
                for r in await conn.fetch("SELECT version_num FROM alembic_version")
            ]
        finally:
            await conn.close()

    assert asyncio.run(versions()) == [engine.head_revision()]
