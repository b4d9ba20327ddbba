"""Dashboard users: created from the CLI (or the demo), each with a role; passwords are kept
only as argon2 hashes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from paygrid.db import dashboard as dashboard_db
from paygrid.db import merchants as merchants_db
from paygrid.db.dashboard import DashboardUserRow, UserSummary
from paygrid.domain.errors import InvalidRequest, ResourceMissing
from paygrid.domain.scopes import ROLES
from paygrid.ids import new_id

MIN_PASSWORD_LENGTH = 10
_hasher = PasswordHasher()
# Verified when the email is unknown, so a miss takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash("paygrid-dashboard-no-such-user")


class DuplicateUser(InvalidRequest):
    """A dashboard user with this email already exists."""

    default_code = "dashboard_user_exists"


@dataclass(frozen=True, slots=True)
class LoginCount:
    attempts: int
    seconds_left: float


@dataclass(frozen=True, slots=True)
class DashboardUser:
    id: str
    merchant_id: str
    email: str
    role: str


async def create_user(
    pool: asyncpg.Pool, *, merchant_id: str, email: str, role: str, password: str
) -> DashboardUser:
    """Add a dashboard user of ``merchant_id`` with one of the API-key roles."""
    email = email.strip()
    if "@" not in email or len(email) > 254:
        raise InvalidRequest(f"'{email}' is not an email address.", param="email")
    if role not in ROLES:
        raise InvalidRequest(f"Unknown role '{role}'; roles are {', '.join(ROLES)}.", param="role")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidRequest(
            f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.", param="password"
        )
    if await merchants_db.get_merchant(pool, merchant_id) is None:
        raise ResourceMissing(f"No such merchant: '{merchant_id}'")
    if await dashboard_db.user_by_email(pool, email) is not None:
        raise DuplicateUser(f"A dashboard user with the email {email} already exists.")
    row = await dashboard_db.insert_user(
        pool,
        user_id=new_id("dbu"),
        merchant_id=merchant_id,
        email=email,
        password_hash=_hasher.hash(password),
        role=role,
    )
    return _user(row)


async def verify_login(pool: asyncpg.Pool, email: str, password: str) -> DashboardUser | None:
    """The user these credentials belong to, or ``None`` (unknown email, wrong password or a
    disabled user: the caller cannot tell which, and neither can a timing observer)."""
    row = await dashboard_db.user_by_email(pool, email.strip())
    try:
        _hasher.verify(row.password_hash if row else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None or row.disabled_at is not None:
        return None
    if _hasher.check_needs_rehash(row.password_hash):
        await dashboard_db.set_password_hash(pool, row.id, _hasher.hash(password))
    await dashboard_db.record_login(pool, row.id)
    return _user(row)


def _email_key(email: str) -> bytes:
    # Only a digest is kept: what people type as an email is sometimes their password.
    return hashlib.sha256(email.strip().lower().encode()).digest()


async def count_login_attempt(
    pool: asyncpg.Pool, email: str, window_seconds: float, now: datetime
) -> LoginCount:
    """Count a sign-in attempt for ``email``, made at ``now``, before its password is
    checked, in one atomic statement shared by every paygrid process."""
    attempts, seconds_left = await dashboard_db.count_login_attempt(
        pool, _email_key(email), window_seconds, now
    )
    return LoginCount(attempts, seconds_left)


async def clear_login_attempts(pool: asyncpg.Pool, email: str) -> None:
    """After a successful sign-in, earlier typos no longer count against the email."""
    await dashboard_db.clear_login_attempts(pool, _email_key(email))


async def set_password(pool: asyncpg.Pool, user_id: str, password: str) -> None:
    """Replace a user's password (the demo resets its own when its saved one is lost)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidRequest(
            f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.", param="password"
        )
    await dashboard_db.set_password_hash(pool, user_id, _hasher.hash(password))


def password_matches(user_password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(user_password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def list_users(pool: asyncpg.Pool, merchant_id: str | None = None) -> list[UserSummary]:
    """Dashboard users (one merchant's, when given; it must exist), for the operator's CLI."""
    if merchant_id is not None and await merchants_db.get_merchant(pool, merchant_id) is None:
        raise ResourceMissing(f"No such merchant: '{merchant_id}'")
    return await dashboard_db.list_users(pool, merchant_id)


async def reset_password(pool: asyncpg.Pool, email: str, password: str) -> DashboardUser:
    """The operator sets a user's password (``paygrid users set-password``); the user's
    open dashboard sessions end, as after any credential change."""
    row = await dashboard_db.user_by_email(pool, email.strip())
    if row is None:
        raise ResourceMissing(f"No such dashboard user: '{email}'")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidRequest(
            f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.", param="password"
        )
    async with pool.acquire() as conn, conn.transaction():
        await dashboard_db.set_password_hash(conn, row.id, _hasher.hash(password))
        await dashboard_db.revoke_user_sessions(conn, row.id)
    return _user(row)


async def find_user(pool: asyncpg.Pool, email: str) -> DashboardUser | None:
    row = await dashboard_db.user_by_email(pool, email)
    return None if row is None else _user(row)


def _user(row: DashboardUserRow) -> DashboardUser:
    return DashboardUser(row.id, row.merchant_id, row.email, row.role)
