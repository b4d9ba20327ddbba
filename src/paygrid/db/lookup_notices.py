"""``NOTIFY`` for the per-process lookup caches (``paygrid.lookup_cache``): a statement that
changes a cached table also notifies, in the same statement and so the same transaction,
which topic every process must drop."""

from __future__ import annotations

from typing import Final

CHANNEL: Final = "paygrid_lookups"
API_KEYS: Final = "api_keys"
"""``api_keys``: a principal cached by key hash (revocation, and any change of scopes)."""
ROUTING: Final = "routing"
"""``routing_rules`` and ``connector_accounts``: a tenant's routing inputs."""


def notifying(statement: str, topic: str) -> str:
    """``statement`` (an INSERT, UPDATE or DELETE ... RETURNING) so that it also notifies
    ``topic`` when it changed a row; it returns the same rows."""
    return (
        f"WITH changed AS ({statement}),"
        f" notice AS (SELECT pg_notify('{CHANNEL}', '{topic}') WHERE EXISTS (SELECT FROM changed))"
        " SELECT changed.* FROM changed, notice"
    )
