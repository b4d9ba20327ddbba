"""Resolve which database to use: ``PAYGRID_DATABASE_URL``, or the embedded pgserver."""

from __future__ import annotations

from paygrid.config import Settings
from paygrid.db.embedded import EmbeddedPostgres
from paygrid.db.url import asyncpg_url


def resolve_database(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    """Return an asyncpg URL, and the embedded server when one was started for it."""
    if settings.database_url is not None:
        return asyncpg_url(settings.database_url.get_secret_value()), None
    embedded = EmbeddedPostgres(settings.data_dir)
    return embedded.start(), embedded
