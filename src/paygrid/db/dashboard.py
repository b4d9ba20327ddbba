"""Dashboard queries: its users and login sessions, and the read helpers its pages need that
the API has no query for (payment search, overview aggregates, a payment's timeline)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from paygrid.db.executor import Executor
from paygrid.db.pagination import Filters, PageRequest, fetch_page

Row = asyncpg.Record

# -- users and sessions ----------------------------------------------------------------------


async def insert_user(conn: Executor, values: dict[str, Any]) -> Row:
    columns = ", ".join(values)
    params = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    row = await conn.fetchrow(
        f"INSERT INTO dashboard_users ({columns}) VALUES ({params}) RETURNING *",
        *values.values(),
    )
    assert row is not None
    return row


async def user_by_email(conn: Executor, email: str) -> Row | None:
    return await conn.fetchrow(
        "SELECT * FROM dashboard_users WHERE lower(email) = lower($1)", email
    )


async def list_users(conn: Executor, merchant_id: str | None = None) -> list[Row]:
    """Every dashboard user (of one merchant, when given), oldest first; never the hashes."""
    return await conn.fetch(
        "SELECT id, merchant_id, email, role, created_at, last_login_at, disabled_at"
        " FROM dashboard_users WHERE $1::text IS NULL OR merchant_id = $1"
        " ORDER BY created_at, id",
        merchant_id,
    )


async def revoke_user_sessions(conn: Executor, user_id: str) -> None:
    await conn.execute(
        "UPDATE dashboard_sessions SET revoked_at = now() WHERE user_id = $1"
        " AND revoked_at IS NULL",
        user_id,
    )


async def set_password_hash(conn: Executor, user_id: str, password_hash: str) -> None:
    await conn.execute(
        "UPDATE dashboard_users SET password_hash = $2 WHERE id = $1", user_id, password_hash
    )


async def record_login(conn: Executor, user_id: str) -> None:
    await conn.execute("UPDATE dashboard_users SET last_login_at = now() WHERE id = $1", user_id)


async def count_login_attempt(
    conn: Executor, email_hash: bytes, window_seconds: float, now: datetime
) -> tuple[int, float]:
    """Count one sign-in attempt for an email, atomically: a window that has ended starts
    again at 1. Returns the attempts in the window, this one included, and the seconds
    until the window ends."""
    row = await conn.fetchrow(
        "INSERT INTO dashboard_login_counters AS c (email_hash, attempts, window_ends_at)"
        " VALUES ($1, 1, $3::timestamptz + make_interval(secs => $2))"
        " ON CONFLICT (email_hash) DO UPDATE SET"
        " attempts = CASE WHEN c.window_ends_at <= $3 THEN 1 ELSE c.attempts + 1 END,"
        " window_ends_at = CASE WHEN c.window_ends_at <= $3"
        "  THEN $3 + make_interval(secs => $2) ELSE c.window_ends_at END"
        " RETURNING attempts, extract(epoch FROM window_ends_at - $3)::float AS seconds_left",
        email_hash,
        window_seconds,
        now,
    )
    assert row is not None
    return row["attempts"], row["seconds_left"]


async def clear_login_attempts(conn: Executor, email_hash: bytes) -> None:
    await conn.execute("DELETE FROM dashboard_login_counters WHERE email_hash = $1", email_hash)


async def purge_login_counters(conn: Executor, now: datetime) -> int:
    """Delete the counters whose window had ended by ``now``."""
    deleted: int = await conn.fetchval(
        "WITH gone AS (DELETE FROM dashboard_login_counters WHERE window_ends_at < $1"
        " RETURNING 1) SELECT count(*) FROM gone",
        now,
    )
    return deleted


async def insert_session(
    conn: Executor, token_hash: bytes, user_id: str, csrf_token: str, expires_at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO dashboard_sessions (token_hash, user_id, csrf_token, expires_at)"
        " VALUES ($1, $2, $3, $4)",
        token_hash,
        user_id,
        csrf_token,
        expires_at,
    )


async def active_session(conn: Executor, token_hash: bytes, now: datetime) -> Row | None:
    """The session and its user, unless revoked, expired or the user is disabled."""
    return await conn.fetchrow(
        "SELECT s.token_hash, s.csrf_token, s.livemode, s.expires_at, u.id AS user_id,"
        " u.merchant_id, u.email, u.role"
        " FROM dashboard_sessions s JOIN dashboard_users u ON u.id = s.user_id"
        " WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2"
        " AND u.disabled_at IS NULL",
        token_hash,
        now,
    )


async def revoke_session(conn: Executor, token_hash: bytes) -> None:
    await conn.execute(
        "UPDATE dashboard_sessions SET revoked_at = now() WHERE token_hash = $1"
        " AND revoked_at IS NULL",
        token_hash,
    )


async def set_session_mode(conn: Executor, token_hash: bytes, livemode: bool) -> None:
    await conn.execute(
        "UPDATE dashboard_sessions SET livemode = $2 WHERE token_hash = $1", token_hash, livemode
    )


# -- payments search -------------------------------------------------------------------------

# A payment's state as the dashboard shows it: ``dashboard.states.shown_state`` in SQL.
SHOWN_STATE = (
    "(CASE WHEN status = 'succeeded' AND amount_refunded > 0 THEN"
    " CASE WHEN amount_refunded >= amount_received THEN 'refunded'"
    " ELSE 'partially_refunded' END ELSE status END)"
)
REFUND_STATES = frozenset({"refunded", "partially_refunded"})


def _add_search(filters: Filters, query: str, amounts: list[tuple[str, int]]) -> None:
    """One OR group: the id, the reference, the receipt or customer email, or an amount
    (``amounts``: the query read as a major-unit amount, per currency)."""
    start = len(filters.args)
    filters.args.extend([query, [c for c, _ in amounts], [a for _, a in amounts], filters.args[0]])
    q, currencies, minors, merchant = (f"${start + i}" for i in range(1, 5))
    filters.clauses.append(
        f"(id = {q} OR reference = {q} OR lower(receipt_email) = lower({q})"
        f" OR customer_id IN (SELECT id FROM customers WHERE merchant_id = {merchant}"
        f"  AND lower(email) = lower({q}))"
        f" OR (currency, amount) IN (SELECT * FROM unnest({currencies}::text[],"
        f"  {minors}::bigint[])))"
    )


async def search_payments(
    conn: Executor,
    merchant_id: str,
    livemode: bool,
    page: PageRequest,
    *,
    query: str | None,
    amounts: list[tuple[str, int]],
    status: str | None,
    currency: str | None,
    connector: str | None,
    created_gte: datetime | None,
    created_lte: datetime | None,
) -> tuple[list[Row], bool]:
    filters = Filters()
    filters.add("merchant_id = $?", merchant_id)
    filters.add("livemode = $?", livemode)
    if query:
        _add_search(filters, query, amounts)
    if status is not None:
        # The plain status first (its index narrows the rows), then the refund state.
        filters.add("status = $?", "succeeded" if status in REFUND_STATES else status)
        filters.add(f"{SHOWN_STATE} = $?", status)
    filters.add_if("currency = $?", currency)
    filters.add_if("connector = $?", connector)
    filters.add_if("created_at >= $?", created_gte)
    filters.add_if("created_at <= $?", created_lte)
    return await fetch_page(conn, "payments", filters, page)


async def payment_connectors(conn: Executor, merchant_id: str, livemode: bool) -> list[str]:
    # A loose index scan: one index probe per distinct connector (there are a handful),
    # where DISTINCT would read every payment of the merchant.
    first, after = (
        "SELECT connector FROM payments WHERE merchant_id = $1 AND livemode = $2"
        f" AND connector > {bound} ORDER BY connector LIMIT 1"
        for bound in ("''", "c.connector")
    )
    rows = await conn.fetch(
        f"WITH RECURSIVE c AS (({first}) UNION ALL SELECT ({after}) FROM c"
        " WHERE c.connector IS NOT NULL) SELECT connector FROM c WHERE connector IS NOT NULL",
        merchant_id,
        livemode,
    )
    return [r["connector"] for r in rows]


# -- a payment's timeline --------------------------------------------------------------------


async def events_for_objects(
    conn: Executor, merchant_id: str, livemode: bool, object_ids: list[str]
) -> list[Row]:
    return list(
        await conn.fetch(
            "SELECT * FROM events WHERE merchant_id = $1 AND livemode = $2"
            " AND object_id = ANY($3::text[]) ORDER BY id",
            merchant_id,
            livemode,
            object_ids,
        )
    )


async def deliveries_for_events(conn: Executor, event_ids: list[str]) -> list[Row]:
    return list(
        await conn.fetch(
            "SELECT d.*, e.url FROM webhook_deliveries d"
            " JOIN webhook_endpoints e ON e.id = d.endpoint_id"
            " WHERE d.event_id = ANY($1::text[]) ORDER BY d.id",
            event_ids,
        )
    )


# -- overview --------------------------------------------------------------------------------


async def daily_volume(
    conn: Executor, merchant_id: str, livemode: bool, since: datetime
) -> list[Row]:
    """Money received per UTC day and currency (succeeded payments, by creation day)."""
    return list(
        await conn.fetch(
            "SELECT (created_at AT TIME ZONE 'UTC')::date AS day, currency,"
            " sum(amount_received)::bigint AS volume, count(*) AS payments FROM payments"
            " WHERE merchant_id = $1 AND livemode = $2 AND created_at >= $3"
            " AND amount_received > 0 GROUP BY 1, 2 ORDER BY 1, 2",
            merchant_id,
            livemode,
            since,
        )
    )


async def daily_success(
    conn: Executor, merchant_id: str, livemode: bool, since: datetime
) -> list[Row]:
    """Finished authorization attempts per UTC day and connector, and how many succeeded."""
    return list(
        await conn.fetch(
            "SELECT (a.created_at AT TIME ZONE 'UTC')::date AS day, a.connector,"
            " count(*) AS attempts,"
            " count(*) FILTER (WHERE a.status IN ('authorized', 'captured', 'succeeded'))"
            "  AS succeeded"
            " FROM payment_attempts a JOIN payments p ON p.id = a.payment_id"
            " WHERE p.merchant_id = $1 AND p.livemode = $2 AND a.created_at >= $3"
            " AND a.operation = 'authorize' AND a.status <> 'pending'"
            " GROUP BY 1, 2 ORDER BY 1, 2",
            merchant_id,
            livemode,
            since,
        )
    )


async def status_counts(conn: Executor, merchant_id: str, livemode: bool) -> list[Row]:
    return list(
        await conn.fetch(
            f"SELECT {SHOWN_STATE} AS status, count(*) AS payments FROM payments"
            " WHERE merchant_id = $1 AND livemode = $2 GROUP BY 1 ORDER BY 1",
            merchant_id,
            livemode,
        )
    )


async def day_by_currency(
    conn: Executor, merchant_id: str, livemode: bool, start: datetime, end: datetime
) -> list[Row]:
    """Per currency, between ``start`` and ``end``: money received (payments created then),
    finished authorization attempts and how many succeeded, and refunds made (but failed)."""
    return list(
        await conn.fetch(
            "WITH received AS (SELECT currency, sum(amount_received)::bigint AS volume,"
            "  count(*) FILTER (WHERE amount_received > 0) AS payments FROM payments"
            "  WHERE merchant_id = $1 AND livemode = $2 AND created_at >= $3"
            "  AND created_at < $4 GROUP BY 1),"
            " tried AS (SELECT p.currency, count(*) AS attempts,"
            "  count(*) FILTER (WHERE a.status IN ('authorized', 'captured', 'succeeded'))"
            "  AS succeeded FROM payment_attempts a JOIN payments p ON p.id = a.payment_id"
            "  WHERE p.merchant_id = $1 AND p.livemode = $2 AND a.created_at >= $3"
            "  AND a.created_at < $4 AND a.operation = 'authorize' AND a.status <> 'pending'"
            "  GROUP BY 1),"
            " refunded AS (SELECT currency, sum(amount)::bigint AS refunded, count(*) AS refunds"
            "  FROM refunds WHERE merchant_id = $1 AND livemode = $2 AND created_at >= $3"
            "  AND created_at < $4 AND status <> 'failed' GROUP BY 1)"
            " SELECT currency::text AS currency, coalesce(volume, 0) AS volume,"
            " coalesce(payments, 0) AS payments, coalesce(attempts, 0) AS attempts,"
            " coalesce(succeeded, 0) AS succeeded, coalesce(refunded, 0) AS refunded,"
            " coalesce(refunds, 0) AS refunds"
            " FROM received FULL JOIN tried USING (currency) FULL JOIN refunded USING (currency)"
            " ORDER BY 1",
            merchant_id,
            livemode,
            start,
            end,
        )
    )


async def failed_deliveries(
    conn: Executor, merchant_id: str, livemode: bool, limit: int
) -> list[Row]:
    """Dead-lettered deliveries no later delivery of the same event and endpoint superseded."""
    return list(
        await conn.fetch(
            "SELECT d.id, d.endpoint_id, d.event_id, d.attempt_count, d.updated_at, e.url,"
            " v.type AS event_type"
            " FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id"
            " JOIN events v ON v.id = d.event_id"
            " WHERE d.merchant_id = $1 AND d.livemode = $2 AND d.status = 'failed'"
            " AND e.deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM webhook_deliveries later"
            "  WHERE later.event_id = d.event_id AND later.endpoint_id = d.endpoint_id"
            "  AND later.id > d.id)"
            " ORDER BY d.id DESC LIMIT $3",
            merchant_id,
            livemode,
            limit,
        )
    )
