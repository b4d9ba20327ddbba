"""Scripted outcomes in the simulator's tables (``simulator.scripted_outcomes``, test helpers,
issue 14 §2): a card's script, appended by the API and taken, one outcome per new charge, in
the charge's own statement. Only the simulator touches it."""

from __future__ import annotations

from functools import cache

import asyncpg

from paygrid.connectors.simulator.store import ChargeRow, Scripted, get_charge_by_key


async def insert_scripted_charge(
    pool: asyncpg.Pool,
    *,
    charge_id: str,
    idempotency_key: str,
    token: str,
    amount: int,
    currency: str,
    capture: bool,
    status: str,
    decline_code: str | None,
    return_url: str,
    scripted: Scripted,
) -> tuple[ChargeRow, dict[str, object] | None]:
    """``insert_charge`` in one statement that first takes the card's next scripted outcome
    (a new key only), which then decides the charge's status and decline code (``scripted``:
    (outcome, status, decline code) of every outcome). Returns the charge and the outcome
    row taken, if any: one taken by a request whose key had a charge already must be given
    back (``give_back``)."""
    row = await pool.fetchrow(
        _scripted_insert(tuple(scripted)),
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
    assert row is not None  # the statement always answers one row
    taken: dict[str, object] | None = row["scripted"]
    if row["id"] is None:
        # The same key was being inserted concurrently (see ``insert_charge``).
        existing = await get_charge_by_key(pool, idempotency_key)
        assert existing is not None
        return existing, taken
    return row, taken


def _literal(value: str | None) -> str:
    return "NULL::text" if value is None else "'" + value.replace("'", "''") + "'"


@cache
def _scripted_insert(scripted: tuple[tuple[str, str, str | None], ...]) -> str:
    """The statement with the outcomes' statuses and decline codes written into it: they are
    the simulator's own constants (four tables in all), and as parameters asyncpg would
    encode three arrays on every charge of every payment, scripted or not."""
    values = ", ".join(
        f"({_literal(outcome)}, {_literal(status)}, {_literal(code)})"
        for outcome, status, code in scripted
    )
    return _SCRIPTED_INSERT.replace("{outcomes}", values)


# A new charge (no charge has its idempotency key yet) takes its card's first scripted
# outcome: locked and deleted at once. A charge that finds it locked waits (no SKIP LOCKED)
# until the holder's statement commits, then locks the next one (PostgreSQL locks below the
# LIMIT, so a deleted row is passed over, not returned as nothing). So concurrent charges
# on one scripted card take its outcomes in order, and of concurrent charges with one key
# the one that took the first outcome has inserted the charge before another can go on:
# that charge has the first outcome, and the others give back what they took. A card with
# no script locks nothing and waits for nothing. All in the charge's own statement.
_SCRIPTED_INSERT = (
    "WITH taken AS ("
    " DELETE FROM simulator.scripted_outcomes s USING ("
    "  SELECT token_id, position FROM simulator.scripted_outcomes WHERE token_id = $3"
    "  AND NOT EXISTS (SELECT 1 FROM simulator.charges WHERE idempotency_key = $2)"
    "  ORDER BY position LIMIT 1 FOR UPDATE) AS first"
    " WHERE s.token_id = first.token_id AND s.position = first.position RETURNING s.*),"
    " decided AS ("
    " SELECT coalesce(m.status, $7::text) AS status,"
    "  CASE WHEN t.outcome IS NULL THEN $8::text ELSE m.decline_code END AS decline_code"
    " FROM (SELECT 1) AS one LEFT JOIN taken t ON true"
    " LEFT JOIN (VALUES {outcomes}) AS m(outcome, status, decline_code)"
    "  ON m.outcome = t.outcome),"
    " inserted AS ("
    " INSERT INTO simulator.charges (id, idempotency_key, token_id, amount, currency, capture,"
    "  status, amount_captured, decline_code, return_url)"
    " SELECT $1, $2, $3, $4::bigint, $5, $6, d.status,"
    "  CASE WHEN d.status = 'captured' THEN $4::bigint ELSE 0 END, d.decline_code, $9"
    " FROM decided d ON CONFLICT (idempotency_key) DO NOTHING RETURNING *)"
    " SELECT (SELECT to_jsonb(t) FROM taken t) AS scripted, c.*"
    " FROM (SELECT 1) AS one LEFT JOIN LATERAL ("
    "  SELECT * FROM inserted UNION ALL"
    "  SELECT * FROM simulator.charges WHERE idempotency_key = $2 LIMIT 1) AS c ON true"
)


# As in _SCRIPTED_INSERT: the card's first scripted outcome, locked (waiting for a
# concurrent charge that holds it) and deleted at once.
_TAKE_SCRIPTED = (
    "DELETE FROM simulator.scripted_outcomes s USING ("
    " SELECT token_id, position FROM simulator.scripted_outcomes WHERE token_id = $1"
    " AND NOT EXISTS (SELECT 1 FROM simulator.charges WHERE idempotency_key = $2)"
    " ORDER BY position LIMIT 1 FOR UPDATE) AS first"
    " WHERE s.token_id = first.token_id AND s.position = first.position RETURNING s.*"
)


async def take_scripted(
    pool: asyncpg.Pool, token: str, idempotency_key: str
) -> dict[str, object] | None:
    """The card's next scripted outcome row, taken (None: nothing scripted, or the key has
    a charge already: a repeat takes nothing)."""
    row = await pool.fetchrow(_TAKE_SCRIPTED, token, idempotency_key)
    return None if row is None else dict(row)


async def give_back(pool: asyncpg.Pool, taken: dict[str, object]) -> None:
    """Put an outcome taken by a charge that turned out to be a repeat back, first."""
    await pool.execute(
        "INSERT INTO simulator.scripted_outcomes (token_id, position, outcome, merchant_id,"
        " livemode, payment_method_id)"
        " SELECT $1, least(coalesce(min(position), $2), $2) - 1, $3, $4, false, $5"
        " FROM simulator.scripted_outcomes WHERE token_id = $1",
        taken["token_id"],
        int(str(taken["position"])) + 1,
        taken["outcome"],
        taken["merchant_id"],
        taken["payment_method_id"],
    )


async def add_script(
    pool: asyncpg.Pool,
    token: str,
    outcomes: list[str],
    *,
    merchant_id: str,
    payment_method_id: str,
) -> int:
    """Append ``outcomes`` to the card's script; returns how many are scripted now. The
    card's script is locked while appending, so concurrent appends keep their order."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('simulator.script:' || $1::text))", token
        )
        await conn.execute(
            "INSERT INTO simulator.scripted_outcomes (token_id, position, outcome, merchant_id,"
            " livemode, payment_method_id)"
            " SELECT $1, coalesce((SELECT max(position) + 1 FROM simulator.scripted_outcomes"
            "  WHERE token_id = $1), 0) + o.n - 1, o.outcome, $3, false, $4"
            " FROM unnest($2::text[]) WITH ORDINALITY AS o(outcome, n)",
            token,
            outcomes,
            merchant_id,
            payment_method_id,
        )
        count = await conn.fetchval(
            "SELECT count(*) FROM simulator.scripted_outcomes WHERE token_id = $1", token
        )
    return int(count)


async def script_of(pool: asyncpg.Pool, token: str) -> list[str]:
    """The outcomes still scripted for the card, in order."""
    records = await pool.fetch(
        "SELECT outcome FROM simulator.scripted_outcomes WHERE token_id = $1 ORDER BY position",
        token,
    )
    return [str(r["outcome"]) for r in records]
