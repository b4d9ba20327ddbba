"""Audit log rows, and the session settings the audit triggers read (who acts, for which
request, from which address)."""

from __future__ import annotations

from contextvars import ContextVar
from datetime import datetime
from typing import Any

import asyncpg

from paygrid.db.executor import Connection, Executor
from paygrid.db.pagination import Filters, PageRequest, fetch_page

Row = asyncpg.Record

# (actor, request id, ip) of the code running now: set by the HTTP middleware, the job
# runner and the CLI; None fields are recorded as NULL (actor: "system").
AuditContext = tuple[str | None, str | None, str | None]
current: ContextVar[AuditContext] = ContextVar("paygrid_audit_context", default=(None, None, None))
_applied: dict[int, AuditContext] = {}  # backend pid -> context its session holds


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


async def insert_entry(conn: Executor, values: dict[str, Any]) -> None:
    columns = ", ".join(values)
    params = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    await conn.execute(
        f"INSERT INTO audit_log (id, {columns}) VALUES ("
        "'aud_' || lpad(to_hex(nextval('audit_log_position')), 16, '0'), "
        f"{params})",
        *values.values(),
    )


async def merchants_with_unsealed(conn: Executor) -> list[str]:
    return [
        r["merchant_id"]
        for r in await conn.fetch("SELECT DISTINCT merchant_id FROM audit_log WHERE seq IS NULL")
    ]


async def chain_head(conn: Executor, merchant_id: str) -> Row | None:
    return await conn.fetchrow(
        "SELECT seq, hash FROM audit_log WHERE merchant_id = $1 AND seq IS NOT NULL"
        " ORDER BY seq DESC LIMIT 1",
        merchant_id,
    )


async def unsealed(conn: Executor, merchant_id: str, limit: int) -> list[Row]:
    return list(
        await conn.fetch(
            "SELECT * FROM audit_log WHERE merchant_id = $1 AND seq IS NULL ORDER BY id LIMIT $2",
            merchant_id,
            limit,
        )
    )


async def seal_many(conn: Executor, seals: list[tuple[str, int, bytes, bytes, bytes]]) -> None:
    """Seal entries in one statement: (id, seq, digest, prev_hash, hash) each."""
    if not seals:
        return
    ids, seqs, digests, prevs, hashes = (list(column) for column in zip(*seals, strict=True))
    await conn.execute(
        "UPDATE audit_log a SET seq = s.seq, digest = s.digest, prev_hash = s.prev_hash,"
        " hash = s.hash, sealed_at = now()"
        " FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::bytea[], $5::bytea[])"
        " AS s(id, seq, digest, prev_hash, hash)"
        " WHERE a.id = s.id AND a.seq IS NULL",
        ids,
        seqs,
        digests,
        prevs,
        hashes,
    )


async def sealed_chain(conn: Executor, merchant_id: str) -> list[Row]:
    return list(
        await conn.fetch(
            "SELECT * FROM audit_log WHERE merchant_id = $1 AND seq IS NOT NULL ORDER BY seq",
            merchant_id,
        )
    )


async def all_merchants(conn: Executor) -> list[str]:
    return [
        r["merchant_id"] for r in await conn.fetch("SELECT DISTINCT merchant_id FROM audit_log")
    ]


async def count_unsealed(conn: Executor, merchant_id: str) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM audit_log WHERE merchant_id = $1 AND seq IS NULL", merchant_id
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
) -> tuple[list[Row], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    filters.add_if("object_id = $?", object_id)
    filters.add_if("actor = $?", actor)
    filters.add_if("action = $?", action)
    filters.add_if("created_at >= $?", created_gte)
    filters.add_if("created_at <= $?", created_lte)
    return await fetch_page(conn, "audit_log", filters, page)
