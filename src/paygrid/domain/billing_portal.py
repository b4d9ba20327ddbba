"""The customer billing portal's sessions (issue 14 §4): how long a link and a session
last, what state a session is in at a given time, and how its secrets are kept. Pure.

A session is made by the merchant's server (``POST /v1/billing_portal/sessions``) and its
``url`` carries a random token. The link must be opened within ``LINK_LIFETIME``; the first
browser to open it receives a cookie (a second secret) and may use the portal for
``SESSION_LIFETIME`` from then. Anyone else holding the link later (a shared screenshot, a
browser history) is refused: the session belongs to the browser that opened it."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

LINK_LIFETIME: Final = timedelta(minutes=5)
SESSION_LIFETIME: Final = timedelta(hours=1)
TOKEN_BYTES: Final = 32  # 256 random bits, for the link and for the browser's cookie


class PortalSessionState(StrEnum):
    """Where a session stands at a given time."""

    UNOPENED = "unopened"  # made, the link not visited yet, still within its link lifetime
    ACTIVE = "active"  # opened by a browser, within its session lifetime
    EXPIRED = "expired"  # the link was not opened in time, or the session ended


def state_at(
    now: datetime, *, expires_at: datetime, opened_at: datetime | None, ends_at: datetime | None
) -> PortalSessionState:
    """The session's state at ``now``."""
    if opened_at is None:
        return PortalSessionState.UNOPENED if now < expires_at else PortalSessionState.EXPIRED
    assert ends_at is not None
    return PortalSessionState.ACTIVE if now < ends_at else PortalSessionState.EXPIRED


def new_secret() -> str:
    """A URL- and cookie-safe random secret of ``TOKEN_BYTES`` bytes."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def digest(secret: str) -> bytes:
    """What is stored of a secret: its SHA-256 (the secret is random, so no salt is needed)."""
    return hashlib.sha256(secret.encode()).digest()


def matches(secret: str | None, stored: bytes | None) -> bool:
    """Whether ``secret`` is the one whose digest is ``stored`` (in constant time)."""
    if secret is None or stored is None:
        return False
    return hmac.compare_digest(digest(secret), stored)
