"""The audit chain is sealed in batches (migration 0011): sealing writes one narrow seal row
per batch and never updates an audit row; tampering, deleting or inserting an entry inside a
sealed batch is named by `verify`; redaction keeps the chain verifying; an entry committed
late with a lower id is never left out; entries sealed one by one before the migration stay
verifiable and the batches chain onto them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from alembic import command

from paygrid.clock import FakeClock
from paygrid.db import engine
from paygrid.domain import audit_chain
from paygrid.services import audit
from paygrid.services.merchants import create_merchant
from tests.conftest import scratch_database

PRE_BATCH_REVISION = "0010_payment_method_binding"  # the revision migration 0011 follows


@pytest.fixture(scope="module")
def seals_database(server_url: str) -> Iterator[str]:
    with scratch_database(server_url, "paygrid_seals") as url:
        engine.upgrade(url)
        yield url


@pytest.fixture
async def seals_pool(seals_database: str) -> AsyncIterator[asyncpg.Pool]:
    created = await engine.create_pool(seals_database, 4)
    yield created
    await created.close()


async def _add_customers(pool: asyncpg.Pool, merchant_id: str, count: int) -> None:
    for _ in range(count):
        await pool.execute(
            "INSERT INTO customers (id, merchant_id, livemode, name) VALUES ($1, $2, false, $3)",
            f"cus_{uuid.uuid4().hex[:16]}",
            merchant_id,
            "Person",
        )


async def _ids(pool: asyncpg.Pool, merchant_id: str) -> list[str]:
    rows = await pool.fetch(
        "SELECT id FROM audit_log WHERE merchant_id = $1 ORDER BY id", merchant_id
    )
    return [r["id"] for r in rows]


async def _as_superuser(pool: asyncpg.Pool, sql: str, *args: object) -> None:
    async with pool.acquire() as conn, conn.transaction():
        # Bypass the append-only guards, as someone with superuser access could.
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(sql, *args)


async def test_sealing_appends_seals_and_updates_no_entry(seals_pool: asyncpg.Pool) -> None:
    shop = await create_merchant(seals_pool, "Batched")
    await _add_customers(seals_pool, shop.id, 5)
    before = await seals_pool.fetch("SELECT * FROM audit_log WHERE merchant_id = $1", shop.id)
    assert await audit.seal(seals_pool) >= 10  # the merchant, its keys, 5 customers
    after = await seals_pool.fetch("SELECT * FROM audit_log WHERE merchant_id = $1", shop.id)
    assert sorted(map(tuple, before)) == sorted(map(tuple, after))  # not one row updated
    seals = await seals_pool.fetch(
        "SELECT seq, first_id, last_id, entry_count FROM audit_seals WHERE merchant_id = $1",
        shop.id,
    )
    ids = await _ids(seals_pool, shop.id)
    assert [tuple(s) for s in seals] == [(1, ids[0], ids[-1], len(ids))]
    [report] = await audit.verify(seals_pool, shop.id)
    assert (report.sealed, report.unsealed, report.broken) == (len(ids), 0, None)

    # Nothing to seal: no empty seal is written.
    assert await audit.seal(seals_pool) == 0
    # Seals, like entries, are append-only; entries can no longer be sealed by an update.
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await seals_pool.execute("UPDATE audit_seals SET entry_count = 1")
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await seals_pool.execute("DELETE FROM audit_seals WHERE merchant_id = $1", shop.id)
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await seals_pool.execute("UPDATE audit_log SET seq = 1 WHERE id = $1", ids[0])


async def test_an_entry_inserted_inside_a_sealed_batch_is_named(
    seals_pool: asyncpg.Pool,
) -> None:
    shop = await create_merchant(seals_pool, "Forged")
    await _add_customers(seals_pool, shop.id, 4)
    await audit.seal(seals_pool)
    ids = await _ids(seals_pool, shop.id)
    # A forged entry that sorts between the 3rd and the 4th sealed entries.
    forged = ids[2] + "0"
    await _as_superuser(
        seals_pool,
        "INSERT INTO audit_log (id, merchant_id, livemode, actor, action, object_type,"
        " object_id, after) SELECT $1, merchant_id, livemode, actor, action, object_type,"
        " object_id, after FROM audit_log WHERE id = $2",
        forged,
        ids[2],
    )
    [report] = await audit.verify(seals_pool, shop.id)
    assert report.broken is not None
    assert (report.broken.entry_id, report.broken.seq) == (forged, 4)


async def test_a_deleted_or_tampered_entry_breaks_the_chain_at_that_place(
    seals_pool: asyncpg.Pool,
) -> None:
    shop = await create_merchant(seals_pool, "Tampered")
    await _add_customers(seals_pool, shop.id, 3)
    await audit.seal(seals_pool)
    await _add_customers(seals_pool, shop.id, 3)
    await audit.seal(seals_pool)  # a second batch, chained onto the first
    ids = await _ids(seals_pool, shop.id)
    [whole] = await audit.verify(seals_pool, shop.id)
    assert whole.broken is None and whole.sealed == len(ids)

    victim = len(ids) - 2  # in the second batch
    await _as_superuser(
        seals_pool,
        "UPDATE audit_log SET after = jsonb_set(after, '{name}', '\"Mallory\"') WHERE id = $1",
        ids[victim],
    )
    [tampered] = await audit.verify(seals_pool, shop.id)
    assert tampered.broken is not None
    assert (tampered.broken.entry_id, tampered.broken.seq) == (ids[victim], victim + 1)
    assert "content" in tampered.broken.reason

    await _as_superuser(seals_pool, "DELETE FROM audit_log WHERE id = $1", ids[1])
    [dropped] = await audit.verify(seals_pool, shop.id)
    assert dropped.broken is not None and dropped.broken.entry_id == ids[2]

    # A whole seal removed: the chain says which one is missing.
    await _as_superuser(
        seals_pool, "DELETE FROM audit_seals WHERE merchant_id = $1 AND seq = 1", shop.id
    )
    [unsealed] = await audit.verify(seals_pool, shop.id)
    assert unsealed.broken is not None and "seal 1 is missing" in unsealed.broken.reason


async def test_a_dropped_last_entry_is_detected(seals_pool: asyncpg.Pool) -> None:
    shop = await create_merchant(seals_pool, "Truncated")
    await _add_customers(seals_pool, shop.id, 2)
    await audit.seal(seals_pool)
    ids = await _ids(seals_pool, shop.id)
    await _as_superuser(seals_pool, "DELETE FROM audit_log WHERE id = $1", ids[-1])
    [report] = await audit.verify(seals_pool, shop.id)
    assert report.broken is not None and report.broken.entry_id == ids[-1]
    assert "entries" in report.broken.reason


async def test_redacted_entries_keep_their_place_and_the_chain_verifies(
    seals_pool: asyncpg.Pool,
) -> None:
    shop = await create_merchant(seals_pool, "Redacted")
    await seals_pool.execute(
        "INSERT INTO customers (id, merchant_id, livemode, name, email)"
        " VALUES ($1, $2, false, 'Ada Lovelace', 'ada@example.com')",
        f"cus_{uuid.uuid4().hex[:16]}",
        shop.id,
    )
    await audit.seal(seals_pool)  # sealed with the personal data in it ...
    await _add_customers(seals_pool, shop.id, 1)
    async with seals_pool.acquire() as conn, conn.transaction():
        # ... and one redaction of a sealed entry and of one not sealed yet.
        assert await audit.redact(conn, shop.id, {"Ada Lovelace", "Person"}) == 2
    await audit.seal(seals_pool)
    text = await seals_pool.fetchval(
        "SELECT string_agg(after::text, ' ') FROM audit_log WHERE merchant_id = $1", shop.id
    )
    assert "Ada Lovelace" not in text and "[erased]" in text
    [report] = await audit.verify(seals_pool, shop.id)
    assert report.broken is None and report.unsealed == 0

    # A redacted entry's place is still checked: dropping the entry before it is seen.
    ids = await _ids(seals_pool, shop.id)
    redacted = await seals_pool.fetchval(
        "SELECT id FROM audit_log WHERE merchant_id = $1 AND redacted_at IS NOT NULL"
        " ORDER BY id LIMIT 1",
        shop.id,
    )
    await _as_superuser(
        seals_pool, "DELETE FROM audit_log WHERE id = $1", ids[ids.index(redacted) - 1]
    )
    [dropped] = await audit.verify(seals_pool, shop.id)
    assert dropped.broken is not None


async def test_an_entry_committed_late_with_a_lower_id_is_not_left_out(
    seals_pool: asyncpg.Pool,
) -> None:
    shop = await create_merchant(seals_pool, "Late")
    await audit.seal(seals_pool)
    async with seals_pool.acquire() as slow:
        transaction = slow.transaction()
        await transaction.start()
        await slow.execute(  # draws an entry id, then stays open
            "INSERT INTO customers (id, merchant_id, livemode, name) VALUES ($1, $2, false, 'Slow')",
            f"cus_{uuid.uuid4().hex[:16]}",
            shop.id,
        )
        await _add_customers(seals_pool, shop.id, 1)  # a higher id, committed first
        # While it stays open, nothing above it can be sealed.
        assert await _seal_while_time_passes(seals_pool) == 0
        sealing = asyncio.create_task(audit.seal(seals_pool))
        await asyncio.sleep(0.3)
        assert not sealing.done()  # the sealer waits for the open transaction ...
        await transaction.commit()
    assert await sealing == 2  # ... and then seals both entries in id order
    [report] = await audit.verify(seals_pool, shop.id)
    assert report.broken is None and report.unsealed == 0


@pytest.fixture
def legacy_database(server_url: str) -> Iterator[str]:
    """A database migrated up to the revision before batch seals."""
    with scratch_database(server_url, "paygrid_seal_legacy") as url:
        engine.upgrade(url, PRE_BATCH_REVISION)
        yield url


async def test_entries_sealed_one_by_one_before_the_migration_still_verify(
    legacy_database: str,
) -> None:
    url = legacy_database
    pool = await engine.create_pool(url, 2)
    try:
        shop = await create_merchant(pool, "Legacy")
        await _add_customers(pool, shop.id, 2)
        legacy = await _seal_one_by_one(pool, shop.id)
        await _add_customers(pool, shop.id, 1)  # written before, sealed after the upgrade
    finally:
        await pool.close()
    await asyncio.to_thread(engine.upgrade, url)
    pool = await engine.create_pool(url, 2)
    try:
        await _add_customers(pool, shop.id, 1)
        assert await audit.seal(pool) == 2
        [report] = await audit.verify(pool, shop.id)
        assert (report.sealed, report.unsealed, report.broken) == (legacy + 2, 0, None)
        first_seal = await pool.fetchval(
            "SELECT prev_hash FROM audit_seals WHERE merchant_id = $1", shop.id
        )
        last_legacy = await pool.fetchval(
            "SELECT hash FROM audit_log WHERE merchant_id = $1 AND seq = $2", shop.id, legacy
        )
        assert first_seal == last_legacy  # the batches chain onto the legacy chain

        await _as_superuser(
            pool,
            "UPDATE audit_log SET actor = 'someone else' WHERE merchant_id = $1 AND seq = 2",
            shop.id,
        )
        [tampered] = await audit.verify(pool, shop.id)
        assert tampered.broken is not None and tampered.broken.seq == 2
    finally:
        await pool.close()
    # And back down: the batch seals go, the legacy seals stay.
    await asyncio.to_thread(command.downgrade, engine.alembic_config(url), PRE_BATCH_REVISION)


async def _seal_while_time_passes(pool: asyncpg.Pool) -> int:
    """Seal on a fake clock that the test moves on as fast as the sealer waits."""
    clock = FakeClock()
    sealing = asyncio.create_task(audit.seal(pool, clock))
    while not sealing.done():
        clock.advance(1)
        await asyncio.sleep(0.001)
    return await sealing


async def _seal_one_by_one(pool: asyncpg.Pool, merchant_id: str) -> int:
    """What the sealer did before migration 0011: one update per entry."""
    prev_hash = audit_chain.GENESIS
    rows = await pool.fetch(
        "SELECT * FROM audit_log WHERE merchant_id = $1 ORDER BY id", merchant_id
    )
    for seq, row in enumerate(rows, start=1):
        entry_digest = audit_chain.digest(row)
        entry_hash = audit_chain.link(prev_hash, entry_digest)
        await pool.execute(
            "UPDATE audit_log SET seq = $2, digest = $3, prev_hash = $4, hash = $5,"
            " sealed_at = now() WHERE id = $1",
            row["id"],
            seq,
            entry_digest,
            prev_hash,
            entry_hash,
        )
        prev_hash = entry_hash
    return len(rows)
