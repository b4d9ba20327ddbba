"""Stored idempotent responses that carry a secret are kept encrypted with the credential
key ring; this module names what a sealed body is bound to and re-encrypts them when the
ring rotates."""

from __future__ import annotations

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
