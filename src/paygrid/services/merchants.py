"""Merchants and API keys: creation, listing, revocation and authentication.

Keys are random and long, so a fast hash (SHA-256) is safe for storing them; argon2 is for
human passwords, and would cost milliseconds on every API request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass
from typing import Literal

import asyncpg

from paygrid.db import merchants as merchants_db
from paygrid.db.executor import Executor
from paygrid.db.lookup_notices import API_KEYS
from paygrid.db.merchants import ApiKeyRow
from paygrid.domain import scopes as scopes_domain
from paygrid.domain.errors import AuthenticationFailed, InvalidRequest, ResourceMissing
from paygrid.ids import new_id
from paygrid.lookup_cache import UNCACHED, LookupCache, Lookups

KeyKind = Literal["secret", "publishable"]
_ALPHABET = string.ascii_letters + string.digits
_PREFIXES: dict[tuple[KeyKind, bool], str] = {
    ("secret", False): "sk_test_",
    ("secret", True): "sk_live_",
    ("publishable", False): "pk_test_",
    ("publishable", True): "pk_live_",
}
LOOKUP_LENGTH = 16  # the type prefix plus 8 random characters; indexed, not secret
TOUCH_INTERVAL_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    merchant_id: str
    livemode: bool
    kind: KeyKind
    scopes: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class IssuedKey:
    id: str
    kind: KeyKind
    livemode: bool
    secret: str  # shown once, never stored


@dataclass(frozen=True, slots=True)
class NewMerchant:
    id: str
    name: str
    keys: list[IssuedKey]

    def key(self, kind: KeyKind, livemode: bool) -> str:
        return next(k.secret for k in self.keys if k.kind == kind and k.livemode == livemode)


def hash_key(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


async def issue_key(
    conn: Executor,
    merchant_id: str,
    kind: KeyKind,
    livemode: bool,
    name: str | None = None,
    scopes: list[str] | None = None,
) -> IssuedKey:
    """Issue a key; ``scopes`` grants extra powers (``admin``: queue administration)."""
    secret = _PREFIXES[(kind, livemode)] + "".join(secrets.choice(_ALPHABET) for _ in range(32))
    row = await merchants_db.insert_api_key(
        conn,
        key_id=new_id("key"),
        merchant_id=merchant_id,
        kind=kind,
        livemode=livemode,
        lookup_prefix=secret[:LOOKUP_LENGTH],
        key_hash=hash_key(secret),
        last4=secret[-4:],
        name=name,
        scopes=scopes,
    )
    return IssuedKey(row.id, kind, livemode, secret)


async def create_merchant(pool: asyncpg.Pool, name: str) -> NewMerchant:
    """Create a merchant with a secret and a publishable key in each mode."""
    async with pool.acquire() as conn, conn.transaction():
        merchant = await merchants_db.insert_merchant(conn, new_id("mer"), name)
        keys = [
            await issue_key(conn, merchant.id, kind, livemode) for (kind, livemode) in _PREFIXES
        ]
    return NewMerchant(merchant.id, merchant.name, keys)


async def revoke_key(pool: asyncpg.Pool, key_id: str) -> ApiKeyRow:
    row = await merchants_db.revoke_key(pool, key_id)
    if row is None:
        raise ResourceMissing(f"No such API key: '{key_id}'")
    return row


class Authenticator:
    """Resolves ``Authorization: Bearer`` keys to principals. A valid key's principal is
    cached by its hash for a few seconds (``lookups``); revoking a key drops it in every
    process (``paygrid.lookup_cache``). Refusals are not cached."""

    def __init__(self, pool: asyncpg.Pool, lookups: Lookups | None = None) -> None:
        self._pool = pool
        self._touched: dict[str, float] = {}
        lookups = lookups or UNCACHED
        self._clock = lookups.clock  # the process's clock: last use is business time
        self._principals: LookupCache[bytes, Principal] = lookups.cache(API_KEYS)

    async def authenticate(self, secret: str) -> Principal:
        prefix = next((p for p in _PREFIXES.values() if secret.startswith(p)), None)
        if prefix is None or len(secret) < LOOKUP_LENGTH + 4:
            raise AuthenticationFailed(
                "Invalid API key provided. Keys look like sk_test_... or pk_test_..."
            )
        digest = hash_key(secret)
        principal = await self._principals.get_or_load(
            digest, lambda: self._look_up(secret, digest)
        )
        await self._touch(principal.key_id)
        return principal

    async def _look_up(self, secret: str, digest: bytes) -> Principal:
        candidates = await merchants_db.find_keys_by_prefix(self._pool, secret[:LOOKUP_LENGTH])
        match = next((c for c in candidates if hmac.compare_digest(c.key_hash, digest)), None)
        if match is None:
            raise AuthenticationFailed("Invalid API key provided.")
        if match.revoked_at is not None:
            raise AuthenticationFailed("This API key has been revoked.", code="api_key_revoked")
        return Principal(
            match.id,
            match.merchant_id,
            match.livemode,
            match.kind,
            scopes_domain.effective(match.scopes),
        )

    async def _touch(self, key_id: str) -> None:
        """Record ``last_used_at`` at most once a minute per key per process, so the hot path
        does not write on every request."""
        now = self._clock.monotonic()
        if now - self._touched.get(key_id, -TOUCH_INTERVAL_SECONDS) >= TOUCH_INTERVAL_SECONDS:
            self._touched[key_id] = now
            await merchants_db.touch_key(self._pool, key_id, self._clock.now())


# -- keys over the API (admin scope) --------------------------------------------------------


async def create_key(
    pool: asyncpg.Pool,
    tenant_merchant: str,
    livemode: bool,
    *,
    kind: KeyKind,
    name: str | None,
    role: str | None,
    scopes: list[str] | None,
) -> tuple[ApiKeyRow, str]:
    """Issue a key from a role or a scope list; returns its row and the secret (shown once)."""
    try:
        granted = scopes_domain.check_requested(scopes, role)
    except ValueError as error:
        raise InvalidRequest(str(error), param="role" if role else "scopes") from None
    if granted and kind != "secret":
        raise InvalidRequest("Only secret keys take a role or scopes.", param="type")
    issued = await issue_key(pool, tenant_merchant, kind, livemode, name, sorted(granted))
    row = await merchants_db.get_key(pool, tenant_merchant, livemode, issued.id)
    assert row is not None
    return row, issued.secret


async def roll_key(
    pool: asyncpg.Pool, merchant_id: str, livemode: bool, key_id: str
) -> tuple[ApiKeyRow, str]:
    """Replace a key: a new one with the same kind, name and scopes; the old one is revoked
    in the same transaction."""
    async with pool.acquire() as conn, conn.transaction():
        old = await merchants_db.get_key(conn, merchant_id, livemode, key_id)
        if old is None:
            raise ResourceMissing(f"No such API key: '{key_id}'", param="id")
        if old.revoked_at is not None:
            raise InvalidRequest("This API key is already revoked.", code="api_key_revoked")
        issued = await issue_key(conn, merchant_id, old.kind, livemode, old.name, list(old.scopes))
        await merchants_db.revoke_key(conn, key_id)
        row = await merchants_db.get_key(conn, merchant_id, livemode, issued.id)
    assert row is not None
    return row, issued.secret


async def revoke_tenant_key(
    pool: asyncpg.Pool, merchant_id: str, livemode: bool, key_id: str
) -> ApiKeyRow:
    if await merchants_db.get_key(pool, merchant_id, livemode, key_id) is None:
        raise ResourceMissing(f"No such API key: '{key_id}'", param="id")
    return await revoke_key(pool, key_id)
