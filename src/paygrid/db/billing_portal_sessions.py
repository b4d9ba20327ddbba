"""Customer billing portal sessions: made by the API, found by their link's token (its
SHA-256), and opened once, by one browser (a guarded UPDATE: ``opened_at IS NULL``)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

import asyncpg

from paygrid.db.executor import Executor


@dataclass(frozen=True, slots=True)
class PortalSessionRow:
    """One ``billing_portal_sessions`` row."""

    id: str
    merchant_id: str
    livemode: bool
    customer_id: str
    return_url: str | None
    token_hash: bytes
    csrf_token: str
    browser_hash: bytes | None
    created_at: datetime
    expires_at: datetime
    opened_at: datetime | None
    ends_at: datetime | None

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> PortalSessionRow:
        return cls(**{f.name: record[f.name] for f in fields(cls)})


def _row(record: asyncpg.Record | None) -> PortalSessionRow | None:
    return None if record is None else PortalSessionRow.from_record(record)


_COLUMNS = tuple(f.name for f in fields(PortalSessionRow))


async def insert(conn: Executor, row: PortalSessionRow) -> PortalSessionRow:
    placeholders = ", ".join(f"${i}" for i in range(1, len(_COLUMNS) + 1))
    record = await conn.fetchrow(
        f"INSERT INTO billing_portal_sessions ({', '.join(_COLUMNS)})"
        f" VALUES ({placeholders}) RETURNING *",
        *(getattr(row, name) for name in _COLUMNS),
    )
    assert record is not None
    return PortalSessionRow.from_record(record)


async def get_by_token_hash(conn: Executor, token_hash: bytes) -> PortalSessionRow | None:
    """The session whose link carries the token with this hash (any merchant: the token is
    the capability, as a checkout session's id is)."""
    return _row(
        await conn.fetchrow(
            "SELECT * FROM billing_portal_sessions WHERE token_hash = $1", token_hash
        )
    )


async def mark_opened(
    conn: Executor, session_id: str, browser_hash: bytes, opened_at: datetime, ends_at: datetime
) -> PortalSessionRow | None:
    """Bind the session to the browser that opened it; ``None`` if it was opened already
    (by another request that got there first) or its link expired meanwhile."""
    return _row(
        await conn.fetchrow(
            "UPDATE billing_portal_sessions"
            " SET browser_hash = $2, opened_at = $3, ends_at = $4"
            " WHERE id = $1 AND opened_at IS NULL AND expires_at > $3 RETURNING *",
            session_id,
            browser_hash,
            opened_at,
            ends_at,
        )
    )
