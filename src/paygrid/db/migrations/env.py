"""Alembic environment: runs the migrations over SQLAlchemy's asyncpg dialect.

Several processes may start at once on an older schema (two ``paygrid serve`` and two
``paygrid worker`` behind a load balancer, or Kubernetes pods rolling out): each migrates
at start-up. A session-level advisory lock makes them take turns, so one applies the
migrations and the others, once it is done, find the schema at head and apply nothing
(without it, two would run the same migration and one would fail on ``already exists``).
Migrations always go over a direct connection (``PAYGRID_DATABASE_DIRECT_URL`` behind a
pooler), where a session-level lock holds."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from paygrid.db.engine import MIGRATION_LOCK
from paygrid.db.url import sqlalchemy_url


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


async def _main() -> None:
    engine = create_async_engine(sqlalchemy_url(context.config.attributes["database_url"]))
    async with engine.connect() as connection:
        await connection.execute(text(f"SELECT pg_advisory_lock({MIGRATION_LOCK})"))
        await connection.commit()
        try:
            await connection.run_sync(_run)
            await connection.commit()
        finally:
            await connection.execute(text(f"SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
            await connection.commit()
    await engine.dispose()


asyncio.run(_main())
