"""The simulator's own state, in the ``simulator`` schema. Only the simulator touches it."""

from __future__ import annotations

import asyncpg

from paygrid.db.executor import Executor
from paygrid.ids import new_id

ChargeRow = asyncpg.Record
# (outcome, status, decline code) of every outcome a script may hold.
Scripted = list[tuple[str, str, str | None]]
# A setup is a zero-amount authorization (a card verification), shown in US dollars.
VERIFICATION_CURRENCY = "USD"


def new_token(last4: str, behavior: str) -> str:
    """A token that names the card's last four digits and its test behaviour
    (``simtok_<ulid>-<last4>-<behavior>``): tokenizing writes nothing, and any process can
    read them back without a query. Like a real provider's token it holds no card number."""
    return f"{new_id('simtok')}-{last4}-{behavior}"


def facts_in(token: str) -> tuple[str, str] | None:
    """(last4, behaviour) a token names, or None for tokens issued before they named them
    (those have a row in ``simulator.tokens``)."""
    rest, separator, behavior = token.rpartition("-")
    prefix, separator_2, last4 = rest.rpartition("-")
    if not (separator and separator_2 and prefix.startswith("simtok_")):
        return None
    return last4, behavior


async def get_token(pool: asyncpg.Pool, token: str) -> asyncpg.Record | None:
    return await pool.fetchrow("SELECT * FROM simulator.tokens WHERE id = $1", token)


async def insert_charge(
    pool: asyncpg.Pool,
    *,
    idempotency_key: str,
    token: str,
    amount: int,
    currency: str,
    capture: bool,
    status: str,
    decline_code: str | None,
    return_url: str,
    setup_future_usage: bool = False,
    charge_id: str | None = None,
) -> ChargeRow:
    """Create a charge once per idempotency key; a repeat returns the first charge (whose
    id is not ``charge_id``). A charge for future use that is authorized at once sets its
    card up (``is_set_up``)."""
    charge_id = charge_id or new_id("ch_sim")
    if setup_future_usage:
        return await _insert_setup_charge(
            pool,
            charge_id,
            idempotency_key,
            token,
            amount,
            currency,
            capture,
            status,
            decline_code,
            return_url,
        )
    row = await pool.fetchrow(
        "WITH inserted AS ("
        " INSERT INTO simulator.charges (id, idempotency_key, token_id, amount, currency, capture,"
        "  status, amount_captured, decline_code, return_url)"
        " VALUES ($1, $2, $3, $4::bigint, $5, $6, $7::text,"
        " CASE WHEN $7::text = 'captured' THEN $4::bigint ELSE 0 END, $8, $9)"
        " ON CONFLICT (idempotency_key) DO NOTHING RETURNING *)"
        " SELECT * FROM inserted UNION ALL"
        " SELECT * FROM simulator.charges WHERE idempotency_key = $2 LIMIT 1",
        charge_id,
        idempotency_key,
        token,
        amount,
        currency,
        capture,
        status,
        decline_code,
        return_url,
    )
    if row is None:
        # The same key was being inserted concurrently: ON CONFLICT waited for it, but this
        # statement's snapshot predates it. It is committed now.
        row = await get_charge_by_key(pool, idempotency_key)
    assert row is not None  # the insert or the existing row is always there
    return row


async def _insert_setup_charge(
    pool: asyncpg.Pool,
    charge_id: str,
    idempotency_key: str,
    token: str,
    amount: int,
    currency: str,
    capture: bool,
    status: str,
    decline_code: str | None,
    return_url: str,
) -> ChargeRow:
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "INSERT INTO simulator.charges (id, idempotency_key, token_id, amount, currency,"
            " capture, status, amount_captured, decline_code, return_url, setup_future_usage)"
            " VALUES ($1, $2, $3, $4::bigint, $5, $6, $7::text,"
            " CASE WHEN $7::text = 'captured' THEN $4::bigint ELSE 0 END, $8, $9, true)"
            " ON CONFLICT (idempotency_key) DO NOTHING RETURNING *",
            charge_id,
            idempotency_key,
            token,
            amount,
            currency,
            capture,
            status,
            decline_code,
            return_url,
        )
        if row is None:
            row = await conn.fetchrow(
                "SELECT * FROM simulator.charges WHERE idempotency_key = $1", idempotency_key
            )
        elif status in ("authorized", "captured"):
            await _remember_setup(conn, token, row["id"])
    assert row is not None
    return row


async def _remember_setup(conn: Executor, token: str, charge_id: str) -> None:
    await conn.execute(
        "INSERT INTO simulator.setups (token_id, charge_id) VALUES ($1, $2)"
        " ON CONFLICT (token_id) DO NOTHING",
        token,
        charge_id,
    )


async def is_set_up(pool: asyncpg.Pool, token: str) -> bool:
    """Whether the card was authenticated for off-session use (a setup, or a charge made
    with ``setup_future_usage`` that was authorized)."""
    return bool(
        await pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM simulator.setups WHERE token_id = $1)", token
        )
    )


async def get_charge(pool: asyncpg.Pool, charge_id: str) -> ChargeRow | None:
    return await pool.fetchrow("SELECT * FROM simulator.charges WHERE id = $1", charge_id)


async def get_charge_by_key(pool: asyncpg.Pool, idempotency_key: str) -> ChargeRow | None:
    return await pool.fetchrow(
        "SELECT * FROM simulator.charges WHERE idempotency_key = $1", idempotency_key
    )


async def get_operation(pool: asyncpg.Pool, operation_id: str) -> asyncpg.Record | None:
    return await pool.fetchrow("SELECT * FROM simulator.operations WHERE id = $1", operation_id)


async def resolve_authentication(
    pool: asyncpg.Pool, charge_id: str, *, approved: bool
) -> ChargeRow | None:
    """Finish a pending 3-D Secure challenge; ``None`` if the charge is not awaiting one.
    An approved charge made for future use sets its card up."""
    return await pool.fetchrow(
        "WITH c AS (UPDATE simulator.charges SET"
        " status = CASE WHEN NOT $2 THEN 'declined' WHEN capture THEN 'captured' ELSE 'authorized' END,"
        " amount_captured = CASE WHEN $2 AND capture THEN amount ELSE 0 END,"
        " decline_code = CASE WHEN $2 THEN NULL ELSE 'authentication_failed' END"
        " WHERE id = $1 AND status = 'requires_action' RETURNING *),"
        " s AS (INSERT INTO simulator.setups (token_id, charge_id)"
        "  SELECT token_id, id FROM c WHERE $2 AND setup_future_usage"
        "  ON CONFLICT (token_id) DO NOTHING)"
        " SELECT * FROM c",
        charge_id,
        approved,
    )


async def apply_operation(
    pool: asyncpg.Pool, *, idempotency_key: str, charge_id: str, kind: str, amount: int
) -> tuple[bool, str, str | None]:
    """Run a capture, void or refund once per idempotency key.

    Returns (succeeded, operation id, failure reason). A repeated key returns the first result.
    """
    async with pool.acquire() as conn, conn.transaction():
        # Like a real provider, operations on one charge are serialized: the charge row is
        # locked before the key is looked up, so of identical concurrent calls one runs and
        # the others, reading after it committed, return its result.
        if await conn.fetchval(_LOCK_CHARGE, charge_id) is None:
            return False, new_id("sop"), "resource_missing"  # no such charge: nothing recorded
        existing = await conn.fetchrow(
            "SELECT id, succeeded, failure_reason FROM simulator.operations"
            " WHERE idempotency_key = $1",
            idempotency_key,
        )
        if existing is not None:
            return existing["succeeded"], existing["id"], existing["failure_reason"]
        updated = await conn.fetchval(_OPERATION_SQL[kind], charge_id, amount)
        failure = None if updated else f"charge_not_{kind}able"
        op_id = new_id("sop")
        await conn.execute(
            "INSERT INTO simulator.operations (idempotency_key, id, charge_id, kind, amount,"
            " succeeded, failure_reason) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            idempotency_key,
            op_id,
            charge_id,
            kind,
            amount,
            updated is not None,
            failure,
        )
        return updated is not None, op_id, failure


_LOCK_CHARGE = "SELECT id FROM simulator.charges WHERE id = $1 FOR UPDATE"
_OPERATION_SQL = {
    "capture": "UPDATE simulator.charges SET status = 'captured', amount_captured = $2"
    " WHERE id = $1 AND status = 'authorized' AND $2 <= amount RETURNING id",
    "void": "UPDATE simulator.charges SET status = 'voided'"
    " WHERE id = $1 AND status IN ('authorized', 'requires_action') AND $2 >= 0 RETURNING id",
    "refund": "UPDATE simulator.charges SET amount_refunded = amount_refunded + $2"
    " WHERE id = $1 AND status = 'captured' AND amount_refunded + $2 <= amount_captured"
    " RETURNING id",
}
