"""The audit log: entries are written by database triggers in the changing transaction
(see migration 0005); this module records the few actions triggers cannot see, seals the
hash chain in batches (migration 0011), verifies it, lists entries and redacts personal
data for GDPR erasures."""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import asyncpg
import structlog

from paygrid.clock import SYSTEM_CLOCK, Clock
from paygrid.db import audit as audit_db
from paygrid.db.executor import Connection, Executor
from paygrid.db.pagination import PageRequest
from paygrid.dependencies import Deps
from paygrid.domain import audit_chain
from paygrid.schemas.audit import AuditEntry
from paygrid.services.context import Tenant

log = structlog.get_logger("paygrid.audit")

SEAL: Final = "audit.seal"
# Entries per seal. Hashing an entry costs tens of microseconds of CPU that block the event
# loop (the sealer runs in the API process too): 100 entries keep each slice to a few ms, so
# sealing does not show in the API's tail latency.
SEAL_BATCH: Final = 100
VERIFY_PAGE: Final = 20  # seals read at a time (with their entries) when verifying
# Waiting for the transactions that may still commit entries below the horizon: payment
# transactions last milliseconds; one that stays open longer only delays sealing.
HORIZON_POLLS: Final = 200
HORIZON_POLL_SECONDS: Final = 0.01


async def record(
    conn: Executor,
    *,
    merchant_id: str,
    livemode: bool,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    request_id: str | None = None,
    ip: str | None = None,
) -> None:
    """Write an entry for an action no table trigger sees (call it in the action's
    transaction)."""
    _, context_request, context_ip = audit_db.current.get()
    await audit_db.insert_entry(
        conn,
        {
            "merchant_id": merchant_id,
            "livemode": livemode,
            "actor": actor,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "before": before,
            "after": after,
            "request_id": request_id or context_request,
            "ip": ip or context_ip,
        },
    )


async def seal(pool: asyncpg.Pool, clock: Clock = SYSTEM_CLOCK) -> int:
    """Seal every merchant's entries that no seal covers yet, in batches in id order, up to
    a horizon below which no open transaction can still add an entry; returns how many.
    One sealer per merchant at a time (an advisory lock), so seals never fork."""
    horizon = await _horizon(pool, clock)
    if horizon is None:
        return 0
    sealed = 0
    for merchant_id in await audit_db.merchants_to_seal(pool, horizon):
        while True:  # batch after batch until the merchant's backlog is sealed
            batch = await _seal_batch(pool, merchant_id, horizon)
            sealed += batch
            if batch < SEAL_BATCH:
                break
    return sealed


async def _horizon(pool: asyncpg.Pool, clock: Clock) -> str | None:
    """The id of the last position drawn, once every transaction that may have drawn one up
    to it has ended. Ids are drawn in order but commit out of order: sealing an id range
    while an entry inside it is still uncommitted would leave that entry out for good."""
    position = await audit_db.last_position(pool)
    writers = await audit_db.writing_transactions(pool)
    for _ in range(HORIZON_POLLS):
        if not writers:
            return audit_db.entry_id(position)
        await clock.sleep(HORIZON_POLL_SECONDS)
        writers = await audit_db.writing_transactions(pool, writers)
    log.warning("audit.seal_waiting", open_transactions=writers)  # sealed on a later run
    return None


async def _seal_batch(pool: asyncpg.Pool, merchant_id: str, horizon: str) -> int:
    async with pool.acquire() as conn, conn.transaction():
        await audit_db.lock_chain(conn, merchant_id)
        head = await audit_db.chain_head(conn, merchant_id, audit_chain.GENESIS)
        entries = await audit_db.entries_after(conn, merchant_id, head.last_id, horizon, SEAL_BATCH)
        if entries:
            seal = audit_chain.seal_batch(head.seq + 1, head.hash, entries)
            await audit_db.insert_seal(conn, merchant_id, seal)
    return len(entries)


async def seal_job(_payload: dict[str, Any], deps: Deps) -> None:
    sealed = await seal(deps.pool, deps.clock)
    if sealed:
        log.info("audit.sealed", count=sealed)


@dataclass(frozen=True, slots=True)
class ChainReport:
    merchant_id: str
    sealed: int
    unsealed: int
    broken: audit_chain.BrokenLink | None


async def verify(pool: asyncpg.Pool, merchant_id: str | None = None) -> list[ChainReport]:
    """Check each merchant's chain (read-only); entries not sealed yet are only counted."""
    merchants = [merchant_id] if merchant_id else await audit_db.all_merchants(pool)
    reports = []
    for merchant in merchants:
        legacy = await audit_db.legacy_chain(pool, merchant)
        broken = audit_chain.first_broken_link(legacy)
        if broken is None:
            head = bytes(legacy[-1]["hash"]) if legacy else audit_chain.GENESIS
            broken = await _first_broken_seal(pool, merchant, head, len(legacy) + 1)
        sealed = len(legacy) + await audit_db.count_batch_sealed(pool, merchant)
        unsealed = await audit_db.count_unsealed(pool, merchant)
        reports.append(ChainReport(merchant, sealed, unsealed, broken))
    return reports


async def _first_broken_seal(
    pool: asyncpg.Pool, merchant_id: str, prev_hash: bytes, position: int
) -> audit_chain.BrokenLink | None:
    """Walk the merchant's seals in order, a page of them (and their entries) at a time."""
    seq, last_id = 0, ""
    while seals := await audit_db.seals_after(pool, merchant_id, seq, VERIFY_PAGE):
        entries = await audit_db.entries_after(pool, merchant_id, last_id, seals[-1].last_id)
        ids = [str(entry["id"]) for entry in entries]
        start = 0
        for seal in seals:
            end = bisect.bisect_right(ids, seal.last_id, lo=start)
            broken = audit_chain.broken_seal(
                seal, entries[start:end], (seq + 1, prev_hash), position
            )
            if broken is not None:
                return broken
            seq, last_id, prev_hash = seal.seq, seal.last_id, seal.hash
            position += seal.entry_count
            start = end
    return None


async def list_entries(
    deps: Deps,
    tenant: Tenant,
    page: PageRequest,
    *,
    object_id: str | None,
    actor: str | None,
    action: str | None,
    created_gte: datetime | None = None,
    created_lte: datetime | None = None,
) -> tuple[list[AuditEntry], bool]:
    rows, has_more = await audit_db.list_entries(
        deps.pool,
        tenant.merchant_id,
        tenant.livemode,
        page,
        object_id=object_id,
        actor=actor,
        action=action,
        created_gte=created_gte,
        created_lte=created_lte,
    )
    return [AuditEntry.from_row(row) for row in rows], has_more


async def redact(conn: Connection, merchant_id: str, values: set[str]) -> int:
    """Replace personal data (exact strings) inside the merchant's entries' before/after with
    "[erased]", in the caller's transaction (a GDPR erasure). Sealed entries keep the digest
    they were sealed with and are marked redacted, so the chain still verifies."""
    targets = sorted(v for v in values if v)
    if not targets:
        return 0
    patterns = [f"%{_like_escape(json.dumps(v)[1:-1])}%" for v in targets]
    entries = await audit_db.entries_mentioning(conn, merchant_id, patterns)
    for entry in entries:
        await audit_db.redact_entry(
            conn, entry.id, _scrub(entry.before, targets), _scrub(entry.after, targets)
        )
    return len(entries)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _scrub(value: Any, targets: list[str]) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v, targets) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, targets) for v in value]
    if isinstance(value, str) and any(t in value for t in targets):
        return "[erased]"
    return value
