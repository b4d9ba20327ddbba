"""Stored idempotent responses that carry a secret are kept encrypted with the credential
key ring; this module names what a sealed body is bound to and re-encrypts them when the
ring rotates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from paygrid.crypto import KeyRing
from paygrid.db import idempotency as keys_db


def seal_context(merchant_id: str, livemode: bool, key: str) -> str:
    """Associated data binding a sealed body to its row: copied onto another key's row, it
    does not decrypt."""
    return f"idempotency_keys:{merchant_id}:{livemode}:{key}"


async def rotate_encryption(pool: asyncpg.Pool, keys: KeyRing) -> tuple[int, int]:
    """Re-encrypt every sealed response under the ring's active key, so an old key can be
    dropped without making replays of the last 24 hours unreadable. A row claimed afresh
    meanwhile is left alone. Returns (re-encrypted, already current)."""
    rotated = current = 0
    for stored in await keys_db.sealed_responses(pool):
        if keys.is_current(stored.sealed):
            current += 1
            continue
        context = seal_context(stored.merchant_id, stored.livemode, stored.key)
        plain = keys.decrypt(stored.sealed, context=context)
        if await keys_db.reseal(pool, stored, keys.encrypt(plain, context=context)):
            rotated += 1
    return rotated, current


# The requests whose use case claims the idempotency key inside its own first write and
# stores the response inside its last one (two fewer round trips and commits): creating a
# payment, the hot path. Every other POST is claimed and completed by the middleware.
CLAIMED_BY_USE_CASE: frozenset[tuple[str, str]] = frozenset({("POST", "/v1/payments")})

ClaimRequest = keys_db.ClaimRequest
StoredKey = keys_db.StoredKey


# A use case found its idempotency key already in the table (in use, answered or expired)
# and wrote nothing: the middleware resolves the key as for any other request. Not a
# PaygridError: no HTTP answer is made of it.
IdempotencyClaimTaken = keys_db.KeyAlreadyClaimed


@dataclass(slots=True)
class IdempotencyClaim:
    """A key the middleware leaves for the use case to claim (``CLAIMED_BY_USE_CASE``).
    ``held``: already claimed (the middleware took over a dead request's lock); the use case
    sets ``claimed`` when its statement claims it and ``completed_body`` when a statement
    stored the response."""

    request: ClaimRequest
    held: bool = False
    claimed: bool = False
    completed_body: bytes | None = None

    @property
    def ours(self) -> bool:
        """Whether this request holds the key (so it may store or release it)."""
        return self.held or self.claimed


async def claim(
    pool: asyncpg.Pool, request: ClaimRequest, *, ttl_hours: int, now: datetime
) -> bool:
    """Claim a key at ``now`` (one expired by then is taken over); False when a live key
    exists."""
    return await keys_db.claim(
        pool,
        merchant_id=request.merchant_id,
        livemode=request.livemode,
        key=request.key,
        method=request.method,
        path=request.path,
        request_hash=request.request_hash,
        ttl_hours=ttl_hours,
        api_key_id=request.api_key_id,
        api_key_scopes=request.api_key_scopes,
        now=now,
    )


async def load(
    pool: asyncpg.Pool, request: ClaimRequest, *, lock_seconds: int, now: datetime
) -> StoredKey | None:
    return await keys_db.load(
        pool,
        merchant_id=request.merchant_id,
        livemode=request.livemode,
        key=request.key,
        lock_seconds=lock_seconds,
        now=now,
    )


async def take_over(
    pool: asyncpg.Pool, request: ClaimRequest, *, lock_seconds: int, now: datetime
) -> bool:
    return await keys_db.take_over(
        pool,
        merchant_id=request.merchant_id,
        livemode=request.livemode,
        key=request.key,
        lock_seconds=lock_seconds,
        now=now,
    )


async def complete(
    pool: asyncpg.Pool,
    request: ClaimRequest,
    *,
    status: int,
    body: bytes | None,
    sealed: bytes | None,
) -> None:
    await keys_db.complete(
        pool,
        merchant_id=request.merchant_id,
        livemode=request.livemode,
        key=request.key,
        status=status,
        body=body,
        sealed_body=sealed,
    )


async def release(pool: asyncpg.Pool, request: ClaimRequest) -> None:
    await keys_db.release(
        pool, merchant_id=request.merchant_id, livemode=request.livemode, key=request.key
    )
