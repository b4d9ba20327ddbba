"""Dashboard login sessions: a random token the browser keeps in a cookie, of which only the
SHA-256 is stored, with a CSRF token and the mode (test or live) the session shows."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from paygrid.db import dashboard as dashboard_db
from paygrid.db.dashboard import ActiveSession as ActiveSession  # what active_session returns
from paygrid.dependencies import Deps

TOKEN_BYTES = 32


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just started: its token (for the cookie, never stored) and how long it
    lasts."""

    token: str
    lifetime: timedelta


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def start_session(deps: Deps, user_id: str) -> NewSession:
    """Sign ``user_id`` in for the configured session lifetime (in test mode first)."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    lifetime = timedelta(hours=deps.settings.dashboard_session_hours)
    await dashboard_db.insert_session(
        deps.pool,
        token_hash(token),
        user_id,
        secrets.token_urlsafe(TOKEN_BYTES),
        deps.clock.now() + lifetime,
    )
    return NewSession(token, lifetime)


async def active_session(deps: Deps, hashed_token: bytes) -> ActiveSession | None:
    """The session and its user, unless revoked, expired or the user is disabled."""
    return await dashboard_db.active_session(deps.pool, hashed_token, deps.clock.now())


async def end_session(deps: Deps, hashed_token: bytes) -> None:
    await dashboard_db.revoke_session(deps.pool, hashed_token)


async def switch_mode(deps: Deps, hashed_token: bytes, *, livemode: bool) -> None:
    """Show live (or test) data from the next page on."""
    await dashboard_db.set_session_mode(deps.pool, hashed_token, livemode)
