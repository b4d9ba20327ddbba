"""The audit log: entries are written by database triggers in the changing transaction
(see migration 0005); this module records the few actions triggers cannot see, seals the
hash chain, verifies it, lists entries and redacts personal data for GDPR erasures."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import asyncpg
import structlog

from paygrid.db import audit as audit_db
from paygrid.db.executor import Connection, Executor
from paygrid.db.pagination import PageRequest
from paygrid.domain import audit_chain
from paygrid.schemas.audit import AuditEntry
from paygrid.services.context import Deps, Tenant

log = structlog.get_logger("paygrid.audit")

SEAL: Final = "audit.seal"
SEAL_BATCH: Final = 1000


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


async def seal(pool: asyncpg.Pool) -> int:
    """Chain every unsealed entry onto its merchant's chain, in id order; returns how many.
    One sealer per merchant at a time (an advisory lock), so sequences never fork."""
    sealed = 0
    for merchant_id in await audit_db.merchants_with_unsealed(pool):
        while True:  # batch after batch until the merchant's backlog is sealed
            batch = await _seal_batch(pool, merchant_id)
            sealed += batch
            if batch < SEAL_BATCH:
                break
    return sealed


async def _seal_batch(pool: asyncpg.Pool, merchant_id: str) -> int:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('paygrid.audit:' || $1))", merchant_id
        )
        head = await audit_db.chain_head(conn, merchant_id)
        seq = head["seq"] if head else 0
        prev_hash = bytes(head["hash"]) if head else audit_chain.GENESIS
        seals = []
        for entry in await audit_db.unsealed(conn, merchant_id, SEAL_BATCH):
            seq += 1
            entry_digest = audit_chain.digest(entry)
            entry_hash = audit_chain.link(prev_hash, entry_digest)
            seals.append((entry["id"], seq, entry_digest, prev_hash, entry_hash))
            prev_hash = entry_hash
        await audit_db.seal_many(conn, seals)
    return len(seals)


async def seal_job(_payload: dict[str, Any], deps: Deps) -> None:
    sealed = await seal(deps.pool)
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
        chain = await audit_db.sealed_chain(pool, merchant)
        reports.append(
            ChainReport(
                merchant,
                len(chain),
                await audit_db.count_unsealed(pool, merchant),
                audit_chain.first_broken_link(chain),
            )
        )
    return reports


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
    await conn.execute("SELECT set_config('paygrid.audit_redaction', 'on', true)")
    rows = await conn.fetch(
        "SELECT id, before, after FROM audit_log WHERE merchant_id = $1"
        " AND (before::text LIKE ANY($2) OR after::text LIKE ANY($2))",
        merchant_id,
        [f"%{_like_escape(json.dumps(v)[1:-1])}%" for v in targets],
    )
    for row in rows:
        await conn.execute(
            "UPDATE audit_log SET before = $2, after = $3, redacted_at = now() WHERE id = $1",
            row["id"],
            _scrub(row["before"], targets),
            _scrub(row["after"], targets),
        )
    return len(rows)


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
