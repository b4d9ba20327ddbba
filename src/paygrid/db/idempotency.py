"""Stored idempotency keys: one row per (merchant, mode, key) holding the first response."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import asyncpg

from paygrid.db.statements import Statement


@dataclass(frozen=True, slots=True)
class StoredKey:
    request_method: str
    request_path: str
    request_hash: bytes
    response_status: int | None
    response_body: bytes | None
    response_body_sealed: bytes | None
    api_key_id: str | None
    api_key_scopes: frozenset[str] | None  # None: stored before keys were recorded
    lock_expired: bool


# One statement: claim the key (a key past its TTL is taken over as new) and, when an expired
# key is claimed afresh, make the objects its old request created forget it, so nothing
# resumes them.
_CLAIM = (
    "WITH claimed AS ("
    " INSERT INTO idempotency_keys AS k (merchant_id, livemode, key, request_method,"
    " request_path, request_hash, locked_at, api_key_id, api_key_scopes, created_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $10, $8, string_to_array($9, ' '), $10)"
    " ON CONFLICT (merchant_id, livemode, key) DO UPDATE SET request_method = $4,"
    "  request_path = $5, request_hash = $6, locked_at = $10, created_at = $10,"
    "  response_status = NULL, response_body = NULL, response_body_sealed = NULL,"
    "  api_key_id = $8, api_key_scopes = string_to_array($9, ' ')"
    "  WHERE k.created_at < $10::timestamptz - make_interval(hours => $7)"
    " RETURNING xmax = 0 AS inserted),"
    " forgotten_payments AS ("
    "  UPDATE payments SET idempotency_key = NULL"
    "  WHERE merchant_id = $1 AND livemode = $2 AND idempotency_key = $3"
    "  AND EXISTS (SELECT 1 FROM claimed WHERE NOT inserted) RETURNING 1),"
    " forgotten_refunds AS ("
    "  UPDATE refunds SET idempotency_key = NULL"
    "  WHERE merchant_id = $1 AND livemode = $2 AND idempotency_key = $3"
    "  AND EXISTS (SELECT 1 FROM claimed WHERE NOT inserted) RETURNING 1)"
    " SELECT count(*) FROM claimed"
)


async def claim(
    pool: asyncpg.Pool,
    *,
    merchant_id: str,
    livemode: bool,
    key: str,
    method: str,
    path: str,
    request_hash: bytes,
    ttl_hours: int,
    api_key_id: str,
    api_key_scopes: frozenset[str],
    now: datetime,
) -> bool:
    """Lock the key for this request at ``now`` (the caller's clock, which also decides
    whether an existing key has outlived ``ttl_hours``), recording the API key that makes
    it; False when a live key already exists."""
    claimed = await pool.fetchval(
        _CLAIM,
        merchant_id,
        livemode,
        key,
        method,
        path,
        request_hash,
        ttl_hours,
        api_key_id,
        scopes_text(api_key_scopes),
        now,
    )
    return bool(claimed)


@lru_cache(maxsize=256)
def scopes_text(scopes: frozenset[str]) -> str:
    """The API key's scopes as the one text parameter the claim's SQL splits
    (``string_to_array(…, ' ')``) into the ``text[]`` column: sorted, space-separated (scope
    names have no spaces, ``domain/scopes.py``). asyncpg encodes a ``text[]`` parameter in
    Python with ``collections.abc`` checks on every element: a statement with a standard
    key's 26 scopes took 55-57 µs of client CPU as an array, 44-47 µs as this text. A key's
    scopes are one frozenset for as long as the key is cached, so this runs once per key."""
    return " ".join(sorted(scopes))


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    """What claiming a key records: the scoped key, the request it is for, and the API key
    that sends it."""

    merchant_id: str
    livemode: bool
    key: str
    method: str
    path: str
    request_hash: bytes
    api_key_id: str
    api_key_scopes: frozenset[str]


class KeyAlreadyClaimed(Exception):
    """A statement with a ``claim_clause`` found the key in the table: it wrote nothing."""


def claim_clause(
    statement: Statement,
    claim: ClaimRequest,
    *,
    now: datetime,
    response: bytes | None = None,
    name: str = "claimed",
) -> str:
    """Claim a key no row holds yet, as a clause of a use case's first write: ``name`` yields
    a row only if this statement inserted the key, so the writes that follow it (``after=``)
    happen only then and commit together with the claim. A key that exists (in use, done, or
    expired) is left to ``claim`` and ``load``, outside. With ``response``, the key is
    written answered (200, that body) at once: a clause of the same statement could not
    update the row this one inserts. The key is created (and locked) at ``now``, the
    caller's clock: its lock and its lifetime run from there."""
    values = [
        claim.merchant_id,
        claim.livemode,
        claim.key,
        claim.method,
        claim.path,
        claim.request_hash,
        claim.api_key_id,
        scopes_text(claim.api_key_scopes),
        now,
    ]
    if response is not None:
        values.append(response)

    def text(*params: str) -> str:
        at = f"{params[8]}::timestamptz"
        answer = f"{at}, NULL, NULL" if response is None else f"NULL, 200, {params[9]}"
        return (
            f"{name} AS (INSERT INTO idempotency_keys (merchant_id, livemode, key,"
            " request_method, request_path, request_hash, api_key_id, api_key_scopes,"
            f" created_at, locked_at, response_status, response_body)"
            f" VALUES ({', '.join(params[:7])}, string_to_array({params[7]}, ' '), {at}, {answer})"
            " ON CONFLICT (merchant_id, livemode, key) DO NOTHING RETURNING 1)"
        )

    statement.clause(("claim", name, response is None), values, text)
    return name


def completion_clause(
    statement: Statement,
    claim: ClaimRequest,
    *,
    status: int,
    body: bytes,
    after: str,
    name: str = "completed",
) -> str:
    """Store the response to a claimed key as a clause of the use case's last write, only
    if clause ``after`` yielded a row (the write the response describes happened)."""

    def text(status_p: str, body_p: str, merchant_p: str, livemode_p: str, key_p: str) -> str:
        return (
            f"{name} AS (UPDATE idempotency_keys SET response_status = {status_p},"
            f" response_body = {body_p}, response_body_sealed = NULL, locked_at = NULL"
            f" WHERE merchant_id = {merchant_p} AND livemode = {livemode_p} AND key = {key_p}"
            f" AND response_status IS NULL AND EXISTS (SELECT 1 FROM {after}) RETURNING 1)"
        )

    values = (status, body, claim.merchant_id, claim.livemode, claim.key)
    statement.clause(("completion", name, after), values, text)
    return name


async def load(
    pool: asyncpg.Pool,
    *,
    merchant_id: str,
    livemode: bool,
    key: str,
    lock_seconds: int,
    now: datetime,
) -> StoredKey | None:
    """The stored key; its lock counts as expired when taken more than ``lock_seconds``
    before ``now`` (the caller's clock)."""
    row = await pool.fetchrow(
        "SELECT request_method, request_path, request_hash, response_status, response_body,"
        " response_body_sealed, api_key_id, api_key_scopes,"
        " locked_at < $5::timestamptz - make_interval(secs => $4) AS lock_expired"
        " FROM idempotency_keys WHERE merchant_id = $1 AND livemode = $2 AND key = $3",
        merchant_id,
        livemode,
        key,
        float(lock_seconds),
        now,
    )
    if row is None:
        return None
    return StoredKey(
        row["request_method"],
        row["request_path"],
        bytes(row["request_hash"]),
        row["response_status"],
        None if row["response_body"] is None else bytes(row["response_body"]),
        None if row["response_body_sealed"] is None else bytes(row["response_body_sealed"]),
        row["api_key_id"],
        None if row["api_key_scopes"] is None else frozenset(row["api_key_scopes"]),
        bool(row["lock_expired"]),
    )


async def take_over(
    pool: asyncpg.Pool,
    *,
    merchant_id: str,
    livemode: bool,
    key: str,
    lock_seconds: int,
    now: datetime,
) -> bool:
    """Re-lock at ``now`` a key whose request died mid-flight (its lock expired by ``now``,
    the caller's clock). Only one caller wins."""
    return bool(
        await pool.fetchval(
            "UPDATE idempotency_keys SET locked_at = $5"
            " WHERE merchant_id = $1 AND livemode = $2 AND key = $3 AND response_status IS NULL"
            " AND locked_at < $5::timestamptz - make_interval(secs => $4) RETURNING true",
            merchant_id,
            livemode,
            key,
            float(lock_seconds),
            now,
        )
    )


async def complete(
    pool: asyncpg.Pool,
    *,
    merchant_id: str,
    livemode: bool,
    key: str,
    status: int,
    body: bytes | None,
    sealed_body: bytes | None = None,
) -> None:
    """Save the response: ``body`` in the clear, or ``sealed_body`` (encrypted) when it
    carries a secret."""
    await pool.execute(
        "UPDATE idempotency_keys SET response_status = $4, response_body = $5,"
        " response_body_sealed = $6, locked_at = NULL"
        " WHERE merchant_id = $1 AND livemode = $2 AND key = $3",
        merchant_id,
        livemode,
        key,
        status,
        body,
        sealed_body,
    )


async def release(pool: asyncpg.Pool, *, merchant_id: str, livemode: bool, key: str) -> None:
    """Forget a key whose request saved no result, so a retry runs it afresh."""
    await pool.execute(
        "DELETE FROM idempotency_keys WHERE merchant_id = $1 AND livemode = $2 AND key = $3"
        " AND response_status IS NULL",
        merchant_id,
        livemode,
        key,
    )


async def purge_expired(pool: asyncpg.Pool, ttl_hours: int, now: datetime) -> int:
    """Delete the keys expired at ``now``, and the key on the objects their requests made,
    in one statement."""
    purged = await pool.fetchval(
        "WITH expired AS ("
        "  DELETE FROM idempotency_keys WHERE created_at < $2::timestamptz - make_interval(hours => $1)"
        "  RETURNING merchant_id, livemode, key),"
        " forgotten_payments AS ("
        "  UPDATE payments p SET idempotency_key = NULL FROM expired e"
        "  WHERE p.merchant_id = e.merchant_id AND p.livemode = e.livemode"
        "  AND p.idempotency_key = e.key RETURNING 1),"
        " forgotten_refunds AS ("
        "  UPDATE refunds r SET idempotency_key = NULL FROM expired e"
        "  WHERE r.merchant_id = e.merchant_id AND r.livemode = e.livemode"
        "  AND r.idempotency_key = e.key RETURNING 1)"
        " SELECT count(*) FROM expired",
        ttl_hours,
        now,
    )
    return int(purged)


@dataclass(frozen=True, slots=True)
class SealedResponse:
    merchant_id: str
    livemode: bool
    key: str
    sealed: bytes


async def sealed_responses(pool: asyncpg.Pool) -> list[SealedResponse]:
    """Every stored response kept encrypted (it carries a secret)."""
    rows = await pool.fetch(
        "SELECT merchant_id, livemode, key, response_body_sealed FROM idempotency_keys"
        " WHERE response_body_sealed IS NOT NULL ORDER BY merchant_id, livemode, key"
    )
    return [
        SealedResponse(r["merchant_id"], r["livemode"], r["key"], bytes(r["response_body_sealed"]))
        for r in rows
    ]


async def reseal(pool: asyncpg.Pool, old: SealedResponse, resealed: bytes) -> bool:
    """Replace a sealed response, unless the key was claimed afresh since it was read."""
    updated = await pool.fetchval(
        "UPDATE idempotency_keys SET response_body_sealed = $5"
        " WHERE merchant_id = $1 AND livemode = $2 AND key = $3 AND response_body_sealed = $4"
        " RETURNING 1",
        old.merchant_id,
        old.livemode,
        old.key,
        old.sealed,
        resealed,
    )
    return updated is not None
