"""Dashboard queries: its users and login sessions, and the overview's aggregates. (Its
payment search is in ``payment_search``, a payment's timeline in ``timelines``.)"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

from paygrid.db.executor import Executor
from paygrid.db.payment_search import SHOWN_STATE

Row = asyncpg.Record

# -- users and sessions ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserSummary:
    """A dashboard user without the password hash (what the operator's list shows)."""

    id: str
    merchant_id: str
    email: str
    role: str
    created_at: datetime
    last_login_at: datetime | None
    disabled_at: datetime | None


@dataclass(frozen=True, slots=True)
class DashboardUserRow(UserSummary):
    """One ``dashboard_users`` row."""

    password_hash: str

    @classmethod
    def from_record(cls, record: Row) -> DashboardUserRow:
        return cls(
            id=record["id"],
            merchant_id=record["merchant_id"],
            email=record["email"],
            role=record["role"],
            created_at=record["created_at"],
            last_login_at=record["last_login_at"],
            disabled_at=record["disabled_at"],
            password_hash=record["password_hash"],
        )


async def insert_user(
    conn: Executor, *, user_id: str, merchant_id: str, email: str, password_hash: str, role: str
) -> DashboardUserRow:
    record = await conn.fetchrow(
        "INSERT INTO dashboard_users (id, merchant_id, email, password_hash, role)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING *",
        user_id,
        merchant_id,
        email,
        password_hash,
        role,
    )
    assert record is not None
    return DashboardUserRow.from_record(record)


async def user_by_email(conn: Executor, email: str) -> DashboardUserRow | None:
    record = await conn.fetchrow(
        "SELECT * FROM dashboard_users WHERE lower(email) = lower($1)", email
    )
    return None if record is None else DashboardUserRow.from_record(record)


async def list_users(conn: Executor, merchant_id: str | None = None) -> list[UserSummary]:
    """Every dashboard user (of one merchant, when given), oldest first; never the hashes."""
    records = await conn.fetch(
        "SELECT id, merchant_id, email, role, created_at, last_login_at, disabled_at"
        " FROM dashboard_users WHERE $1::text IS NULL OR merchant_id = $1"
        " ORDER BY created_at, id",
        merchant_id,
    )
    return [UserSummary(**dict(r.items())) for r in records]


# Revoking ends a session at once (``revoked_at IS NULL`` decides), and the last sign-in
# time is only shown: both are recorded in the database's time, unlike session expiry.
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


@dataclass(frozen=True, slots=True)
class ActiveSession:
    """A login session that is neither revoked nor expired, and its (enabled) user."""

    user_id: str
    merchant_id: str
    email: str
    role: str
    livemode: bool
    csrf_token: str


async def active_session(conn: Executor, token_hash: bytes, now: datetime) -> ActiveSession | None:
    """The session and its user, unless revoked, expired or the user is disabled."""
    row = await conn.fetchrow(
        "SELECT s.token_hash, s.csrf_token, s.livemode, s.expires_at, u.id AS user_id,"
        " u.merchant_id, u.email, u.role"
        " FROM dashboard_sessions s JOIN dashboard_users u ON u.id = s.user_id"
        " WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2"
        " AND u.disabled_at IS NULL",
        token_hash,
        now,
    )
    if row is None:
        return None
    return ActiveSession(
        row["user_id"],
        row["merchant_id"],
        row["email"],
        row["role"],
        row["livemode"],
        row["csrf_token"],
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


# -- overview --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DailyVolume:
    day: date
    currency: str
    volume: int  # received, in the currency's minor units
    payments: int


@dataclass(frozen=True, slots=True)
class DailySuccess:
    day: date
    connector: str
    attempts: int  # finished authorization attempts
    succeeded: int


@dataclass(frozen=True, slots=True)
class StatusCount:
    status: str  # as the dashboard shows it (SHOWN_STATE)
    payments: int


@dataclass(frozen=True, slots=True)
class FailedDelivery:
    id: str
    endpoint_id: str
    event_id: str
    attempt_count: int
    updated_at: datetime
    url: str
    event_type: str


async def daily_success(
    conn: Executor, merchant_id: str, livemode: bool, since: datetime
) -> list[DailySuccess]:
    """Finished authorization attempts per UTC day and connector, and how many succeeded."""
    rows = list(
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
    return [DailySuccess(r["day"], r["connector"], r["attempts"], r["succeeded"]) for r in rows]


async def status_counts(conn: Executor, merchant_id: str, livemode: bool) -> list[StatusCount]:
    rows = await conn.fetch(
        f"SELECT {SHOWN_STATE} AS status, count(*) AS payments FROM payments"
        " WHERE merchant_id = $1 AND livemode = $2 GROUP BY 1 ORDER BY 1",
        merchant_id,
        livemode,
    )
    return [StatusCount(r["status"], r["payments"]) for r in rows]


@dataclass(frozen=True, slots=True)
class CurrencyDay:
    """One currency's day: amounts in its minor units."""

    currency: str
    volume: int  # received, on payments created that day
    payments: int  # payments created that day that received money
    attempts: int  # finished authorization attempts
    succeeded: int  # of which authorized or captured
    refunded: int  # refunds made that day, pending or succeeded
    refunds: int

    @property
    def success_rate(self) -> float | None:
        """Succeeded authorizations per finished one; None without any."""
        return self.succeeded / self.attempts if self.attempts else None

    @classmethod
    def from_record(cls, r: Row) -> CurrencyDay:
        return cls(
            currency=r["currency"].strip(),
            volume=r["volume"],
            payments=r["payments"],
            attempts=r["attempts"],
            succeeded=r["succeeded"],
            refunded=r["refunded"],
            refunds=r["refunds"],
        )


async def day_by_currency(
    conn: Executor, merchant_id: str, livemode: bool, start: datetime, end: datetime
) -> list[CurrencyDay]:
    """Per currency, between ``start`` and ``end``: money received (payments created then),
    finished authorization attempts and how many succeeded, and refunds made (but failed)."""
    return [
        CurrencyDay.from_record(r)
        for r in await conn.fetch(
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
    ]


async def failed_deliveries(
    conn: Executor, merchant_id: str, livemode: bool, limit: int
) -> list[FailedDelivery]:
    """Dead-lettered deliveries no later delivery of the same event and endpoint superseded."""
    rows = list(
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
    return [
        FailedDelivery(
            r["id"],
            r["endpoint_id"],
            r["event_id"],
            r["attempt_count"],
            r["updated_at"],
            r["url"],
            r["event_type"],
        )
        for r in rows
    ]
