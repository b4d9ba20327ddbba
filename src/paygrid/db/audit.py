"""Audit log rows and the seals of their hash chain, and the session settings the audit
triggers read (who acts, for which request, from which address)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from paygrid.db.executor import Connection, Executor
from paygrid.db.pagination import Filters, PageRequest, fetch_page
from paygrid.db.statements import Statement
from paygrid.domain import audit_chain

Row = asyncpg.Record

# (actor, request id, ip) of the code running now: set by the HTTP middleware, the job
# runner and the CLI; None fields are recorded as NULL (actor: "system").
AuditContext = tuple[str | None, str | None, str | None]
current: ContextVar[AuditContext] = ContextVar("paygrid_audit_context", default=(None, None, None))
_applied: dict[int, AuditContext] = {}  # backend pid -> context its session holds
# True while a statement that carries its own audit context (``context_clause``) acquires
# its connection: the session's settings are then not brought up to date first.
_inline: ContextVar[bool] = ContextVar("paygrid_audit_inline", default=False)


def begin_request(request_id: str | None, ip: str | None) -> None:
    """A request starts: nobody is known to act yet."""
    current.set((None, request_id, ip))


def set_actor(actor: str) -> None:
    """Name who acts in the current request (the API key, once authenticated)."""
    _, request_id, ip = current.get()
    current.set((actor, request_id, ip))


def act_as(actor: str) -> None:
    """Outside a request: a job (``job:<kind>``) or the CLI (``cli:<user>``)."""
    current.set((actor, None, None))


def forget_connection(conn: Connection) -> None:
    """A new connection's session holds no context yet (its backend pid may be reused)."""
    _applied.pop(conn.get_server_pid(), None)


async def apply_context(conn: Connection) -> None:
    """Pool ``setup`` hook: before a connection is handed out, put the current audit context
    in its session settings, unless it already holds it (the pool does not reset sessions)."""
    if _inline.get():
        return
    wanted = current.get()
    pid = conn.get_server_pid()
    if _applied.get(pid) == wanted:
        return
    await conn.execute(
        "SELECT set_config('paygrid.actor', $1, false), set_config('paygrid.request_id', $2,"
        " false), set_config('paygrid.ip', $3, false)",
        wanted[0] or "",
        wanted[1] or "",
        wanted[2] or "",
    )
    _applied[pid] = wanted


def context_clause(statement: Statement, name: str = "audit_context") -> str:
    """Add a clause that sets the audit context for this statement's transaction only
    (``set_config(..., true)``) and return a scalar subquery the statement's final SELECT must
    include, so that the clause runs. The audit triggers fire at the end of the statement and
    read it; the connection's session settings are neither read nor changed, which spares
    the ``set_config`` round trip the pool's setup hook would otherwise make."""
    actor, request_id, ip = current.get()
    statement.clauses.append(
        f"{name} AS (SELECT set_config('paygrid.actor', {statement.bind(actor or '')}, true),"
        f" set_config('paygrid.request_id', {statement.bind(request_id or '')}, true),"
        f" set_config('paygrid.ip', {statement.bind(ip or '')}, true))"
    )
    return f"(SELECT count(*) FROM {name})"


@contextmanager
def inline_context() -> Iterator[None]:
    """Around the acquire of a statement built with ``context_clause``: skip the pool's
    setup hook for it."""
    token = _inline.set(True)
    try:
        yield
    finally:
        _inline.reset(token)


async def insert_entry(conn: Executor, values: dict[str, Any]) -> None:
    columns = ", ".join(values)
    params = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    await conn.execute(
        f"INSERT INTO audit_log (id, {columns}) VALUES ("
        "'aud_' || lpad(to_hex(nextval('audit_log_position')), 16, '0'), "
        f"{params})",
        *values.values(),
    )


def entry_id(position: int) -> str:
    """The id of the entry at ``position`` of ``audit_log_position`` (as the triggers build it)."""
    return f"aud_{position:016x}"


async def last_position(conn: Executor) -> int:
    """The last position handed out. The sequence has no per-session cache, so every
    position up to it is drawn already: later entries get higher ids."""
    row = await conn.fetchrow("SELECT last_value, is_called FROM audit_log_position")
    assert row is not None
    return int(row["last_value"]) if row["is_called"] else 0


# Transactions that may write audit rows: writing one takes this lock on audit_log before
# the row's position is drawn, and holds it until the transaction ends.
_WRITERS = (
    "SELECT DISTINCT virtualtransaction FROM pg_locks WHERE locktype = 'relation'"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND relation = 'audit_log'::regclass AND mode = 'RowExclusiveLock'"
    " AND pid IS DISTINCT FROM pg_backend_pid()"
)


async def writing_transactions(conn: Executor, among: list[str] | None = None) -> list[str]:
    """Virtual transaction ids of the open transactions that may be writing audit rows
    (only those ``among`` the given ones, if given)."""
    if among is None:
        rows = await conn.fetch(_WRITERS)
    else:
        rows = await conn.fetch(_WRITERS + " AND virtualtransaction = ANY($1::text[])", among)
    return [str(r["virtualtransaction"]) for r in rows]


@dataclass(frozen=True, slots=True)
class ChainHead:
    """Where a merchant's chain ends: its last seal (0 and "" before the first) and hash."""

    seq: int
    last_id: str
    hash: bytes


async def merchants_to_seal(conn: Executor, horizon: str) -> list[str]:
    """Merchants with entries up to ``horizon`` that no seal covers yet."""
    rows = await conn.fetch(
        "SELECT m.id FROM merchants m WHERE EXISTS (SELECT 1 FROM audit_log a"
        " WHERE a.merchant_id = m.id AND a.seq IS NULL AND a.id <= $1 AND a.id > coalesce("
        "(SELECT s.last_id FROM audit_seals s WHERE s.merchant_id = m.id"
        " ORDER BY s.seq DESC LIMIT 1), '')) ORDER BY m.id",
        horizon,
    )
    return [str(r["id"]) for r in rows]


async def lock_chain(conn: Connection, merchant_id: str) -> None:
    """One sealer per merchant at a time (until the transaction ends): seals never fork."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('paygrid.audit:' || $1))", merchant_id
    )


async def chain_head(conn: Executor, merchant_id: str, genesis: bytes) -> ChainHead:
    seal = await conn.fetchrow(
        "SELECT seq, last_id, hash FROM audit_seals WHERE merchant_id = $1"
        " ORDER BY seq DESC LIMIT 1",
        merchant_id,
    )
    if seal is not None:
        return ChainHead(int(seal["seq"]), str(seal["last_id"]), bytes(seal["hash"]))
    legacy = await conn.fetchval(  # entries sealed one by one before migration 0011
        "SELECT hash FROM audit_log WHERE merchant_id = $1 AND seq IS NOT NULL"
        " ORDER BY seq DESC LIMIT 1",
        merchant_id,
    )
    return ChainHead(0, "", bytes(legacy) if legacy is not None else genesis)


async def entries_after(
    conn: Executor, merchant_id: str, after_id: str, upto_id: str, limit: int | None = None
) -> list[Row]:
    """The merchant's entries sealed (or to seal) in batches, with ids in (after, upto], in
    id order."""
    return list(
        await conn.fetch(
            "SELECT * FROM audit_log WHERE merchant_id = $1 AND seq IS NULL"
            " AND id > $2 AND id <= $3 ORDER BY id LIMIT $4",
            merchant_id,
            after_id,
            upto_id,
            limit,
        )
    )


async def insert_seal(conn: Executor, merchant_id: str, seal: audit_chain.Seal) -> None:
    await conn.execute(
        "INSERT INTO audit_seals (merchant_id, seq, first_id, last_id, entry_count,"
        " entry_digests, digest, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        merchant_id,
        seal.seq,
        seal.first_id,
        seal.last_id,
        seal.entry_count,
        seal.entry_digests,
        seal.digest,
        seal.prev_hash,
        seal.hash,
    )


async def seals_after(
    conn: Executor, merchant_id: str, after_seq: int, limit: int
) -> list[audit_chain.Seal]:
    rows = await conn.fetch(
        "SELECT seq, first_id, last_id, entry_count, entry_digests, digest, prev_hash, hash"
        " FROM audit_seals WHERE merchant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        merchant_id,
        after_seq,
        limit,
    )
    return [
        audit_chain.Seal(
            seq=int(r["seq"]),
            first_id=str(r["first_id"]),
            last_id=str(r["last_id"]),
            entry_count=int(r["entry_count"]),
            entry_digests=bytes(r["entry_digests"]),
            digest=bytes(r["digest"]),
            prev_hash=bytes(r["prev_hash"]),
            hash=bytes(r["hash"]),
        )
        for r in rows
    ]


async def legacy_chain(conn: Executor, merchant_id: str) -> list[Row]:
    """Entries sealed one by one before migration 0011, in chain order."""
    return list(
        await conn.fetch(
            "SELECT * FROM audit_log WHERE merchant_id = $1 AND seq IS NOT NULL ORDER BY seq",
            merchant_id,
        )
    )


async def all_merchants(conn: Executor) -> list[str]:
    """Merchants with audit entries (the merchants table is small; audit_log is not)."""
    rows = await conn.fetch(
        "SELECT m.id FROM merchants m"
        " WHERE EXISTS (SELECT 1 FROM audit_log a WHERE a.merchant_id = m.id) ORDER BY m.id"
    )
    return [str(r["id"]) for r in rows]


async def count_batch_sealed(conn: Executor, merchant_id: str) -> int:
    return int(
        await conn.fetchval(
            "SELECT coalesce(sum(entry_count), 0) FROM audit_seals WHERE merchant_id = $1",
            merchant_id,
        )
    )


async def count_unsealed(conn: Executor, merchant_id: str) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM audit_log WHERE merchant_id = $1 AND seq IS NULL"
            " AND id > coalesce((SELECT last_id FROM audit_seals WHERE merchant_id = $1"
            " ORDER BY seq DESC LIMIT 1), '')",
            merchant_id,
        )
    )


async def list_entries(
    conn: Executor,
    merchant_id: str,
    livemode: bool,
    page: PageRequest,
    *,
    object_id: str | None,
    actor: str | None,
    action: str | None,
    created_gte: datetime | None,
    created_lte: datetime | None,
) -> tuple[list[dict[str, Any]], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    filters.add_if("object_id = $?", object_id)
    filters.add_if("actor = $?", actor)
    filters.add_if("action = $?", action)
    filters.add_if("created_at >= $?", created_gte)
    filters.add_if("created_at <= $?", created_lte)
    rows, has_more = await fetch_page(conn, "audit_log", filters, page)
    return await _with_seal_hashes(conn, merchant_id, rows), has_more


async def _with_seal_hashes(
    conn: Executor, merchant_id: str, rows: list[Row]
) -> list[dict[str, Any]]:
    """The rows, each with ``hash`` the chain hash of the seal that covers it (an entry
    sealed one by one before migration 0011 has its own; one not sealed yet, none)."""
    batched = [str(r["id"]) for r in rows if r["seq"] is None]
    hashes = (
        {
            r["id"]: r["hash"]
            for r in await conn.fetch(
                "SELECT e.id, (SELECT s.hash FROM audit_seals s WHERE s.merchant_id = $1"
                " AND s.last_id >= e.id ORDER BY s.last_id LIMIT 1) AS hash"
                " FROM unnest($2::text[]) AS e(id)",
                merchant_id,
                batched,
            )
        }
        if batched
        else {}
    )
    return [{**r, "hash": hashes.get(r["id"]) if r["seq"] is None else r["hash"]} for r in rows]


@dataclass(frozen=True, slots=True)
class RecordedChange:
    """What an audit entry recorded of an object, before and after."""

    id: str
    before: Any
    after: Any


async def entries_mentioning(
    conn: Connection, merchant_id: str, patterns: list[str]
) -> list[RecordedChange]:
    """The merchant's entries whose before/after text is ``LIKE`` any of ``patterns``, and
    redaction allowed for the rest of the caller's transaction (a GDPR erasure: the table
    refuses changes otherwise)."""
    await conn.execute("SELECT set_config('paygrid.audit_redaction', 'on', true)")
    records = await conn.fetch(
        "SELECT id, before, after FROM audit_log WHERE merchant_id = $1"
        " AND (before::text LIKE ANY($2) OR after::text LIKE ANY($2))",
        merchant_id,
        patterns,
    )
    return [RecordedChange(r["id"], r["before"], r["after"]) for r in records]


async def redact_entry(conn: Connection, entry_id: str, before: Any, after: Any) -> None:
    await conn.execute(
        "UPDATE audit_log SET before = $2, after = $3, redacted_at = now() WHERE id = $1",
        entry_id,
        before,
        after,
    )
