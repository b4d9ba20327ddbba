"""Connection pool creation and the migration runner."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from paygrid.db import audit
from paygrid.db import pooler as pooled
from paygrid.db.executor import Connection
from paygrid.db.inline_pool import InlineReleasePool, open_pool, skip_reset

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


# What fails while the database cannot be reached (stopped, restarting, refusing
# connections), where retrying later helps, unlike a bug. ``unreachable`` tells which of
# these exceptions are such failures.
UNREACHABLE: tuple[type[Exception], ...] = (
    ConnectionError,  # refused, reset or aborted, over TCP or the Unix socket
    FileNotFoundError,  # the Unix socket is gone: the server stopped
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08, and a connection lost mid-query
    asyncpg.CannotConnectNowError,  # 57P03: starting up or shutting down
    asyncpg.AdminShutdownError,  # 57P01
    asyncpg.CrashShutdownError,  # 57P02
    asyncpg.TooManyConnectionsError,  # 53300
    asyncpg.InterfaceError,  # "connection is closed": it died while the pool had it out
)


def unreachable(error: BaseException) -> bool:
    """Whether ``error`` means the database cannot be reached right now."""
    if isinstance(error, FileNotFoundError):
        return error.filename is None  # a socket that is not there, not a missing file
    if isinstance(error, asyncpg.InterfaceError):
        return "connection is closed" in str(error)
    return isinstance(error, UNREACHABLE)


class JsonText(str):
    """A jsonb value serialised already (e.g. the bytes of a response that is also an
    event's payload): sent as it is, not serialised a second time."""

    __slots__ = ()


# jsonb in PostgreSQL's binary format (``jsonb_send``/``jsonb_recv``): a version byte, 1,
# then the JSON text in UTF-8, which is what orjson reads and writes. The text format made
# each value bytes (orjson) -> str -> UTF-8 again on the way out, and as an element of a
# ``jsonb[]`` parameter (``insert_events``, ``enqueue_many``) asyncpg quoted it character by
# character: 2.3x the CPU of the binary format for an event's payload. The values read back
# are the same: ``jsonb_send`` writes the text ``jsonb_out`` does.
_JSONB_VERSION = b"\x01"


def _encode_jsonb(value: object) -> bytes:
    if isinstance(value, JsonText):
        return _JSONB_VERSION + value.encode()
    return _JSONB_VERSION + orjson.dumps(value)


def _decode_jsonb(data: bytes) -> Any:
    return orjson.loads(data[1:])  # past the version byte (1, the only one PostgreSQL has)


async def _init_connection(conn: Connection) -> None:
    audit.forget_connection(conn)
    await conn.set_type_codec(
        "jsonb",
        encoder=_encode_jsonb,
        decoder=_decode_jsonb,
        schema="pg_catalog",
        format="binary",
    )


def application_name() -> str:
    """``paygrid[<pid>]``: the name a process's connections show in ``pg_stat_activity``."""
    return f"paygrid[{os.getpid()}]"


def pool_kwargs(size: int, *, durable: bool = True, audited: bool | None = None) -> dict[str, Any]:
    """``audited`` (default: ``durable``) carries the audit context into sessions; the
    bookkeeping pool writes nothing audited and skips it."""
    audited = durable if audited is None else audited
    return {
        "min_size": min(4, size),
        "max_size": size,
        "init": _init_connection,
        "reset": skip_reset,
        # The main pool carries the audit context (who acts) into each session; the
        # bookkeeping pool writes nothing the audit log records.
        "setup": audit.apply_context if audited else None,
        "command_timeout": 30,
        # Operators (and tests) tell which process a backend serves in pg_stat_activity.
        "server_settings": {"application_name": application_name()}
        | ({} if durable else {"synchronous_commit": "off"}),
    }


async def create_pool(
    url: str,
    size: int,
    *,
    durable: bool = True,
    audited: bool | None = None,
    pooler: bool | None = None,
) -> InlineReleasePool:
    """A connection pool. ``durable=False`` commits without waiting for the WAL flush: only
    for writes whose loss in a crash is harmless (see ``Deps.bookkeeping_pool``).
    ``pooler``: ``url`` is a transaction-mode pooler (``paygrid.db.pooler``); default
    ``PAYGRID_DATABASE_POOLER``."""
    kwargs = pool_kwargs(size, durable=durable, audited=audited)
    if behind_pooler() if pooler is None else pooler:
        audited = durable if audited is None else audited
        kwargs = pooled.pool_kwargs(kwargs, audited=audited, durable=durable)
    return await open_pool(url, **kwargs)


def behind_pooler() -> bool:
    """Whether ``PAYGRID_DATABASE_URL`` is a transaction-mode pooler."""
    from paygrid.config import get_settings

    return get_settings().database_pooler == "transaction"


def direct_url(url: str) -> str:
    """``PAYGRID_DATABASE_DIRECT_URL`` (past any pooler), or ``url`` when it is unset: for
    what needs a session of its own, LISTEN and migrations."""
    from paygrid.config import get_settings
    from paygrid.db.url import asyncpg_url

    direct = get_settings().database_direct_url
    return url if direct is None else asyncpg_url(direct.get_secret_value())


async def create_listen_pool(url: str) -> asyncpg.Pool | None:
    """The pool of the process's LISTEN hub when ``PAYGRID_DATABASE_DIRECT_URL`` is set (one
    session connection, past the pooler, which would lend a LISTENing server connection to
    other clients); None: the hub takes its connection from the main pool, as always."""
    direct = direct_url(url)
    if direct == url:
        return None
    pool = await asyncpg.create_pool(
        direct,
        min_size=0,
        max_size=1,
        server_settings={"application_name": application_name()},
    )
    assert pool is not None
    return pool


READ_APPLICATION_NAME = "paygrid-read"


async def create_read_pool(url: str, size: int) -> InlineReleasePool:
    """A pool for report reads (``PAYGRID_READ_DATABASE_URL``, a replica): every transaction
    is read-only, so nothing can write through it, and its sessions show as
    ``paygrid-read[<pid>]`` in ``pg_stat_activity``."""
    kwargs = pool_kwargs(size, audited=False)
    # No connection opened up front: a replica that is down when the process starts must not
    # stop it (reads go to the primary until the replica answers; db/read_replica.py).
    kwargs["min_size"] = 0
    kwargs["server_settings"] = {
        "application_name": f"{READ_APPLICATION_NAME}[{os.getpid()}]",
        "default_transaction_read_only": "on",
    }
    return await open_pool(url, **kwargs)


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = url
    return config


# The advisory lock migrations take (``migrations/env.py``), and a restore holds while it
# replaces the schema, so a process starting meanwhile waits instead of migrating an empty
# database under pg_restore ("paygrid" in ASCII, as a bigint).
MIGRATION_LOCK = 0x70617967726964


@asynccontextmanager
async def migration_lock(url: str) -> AsyncIterator[None]:
    """Hold the migrations' advisory lock (on a session of its own) while inside."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        try:
            yield
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    finally:
        await conn.close()


def known_revision(revision: str | None) -> bool:
    """Whether this paygrid's migrations know ``revision`` (None: an empty schema)."""
    if revision is None:
        return True
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        return ScriptDirectory.from_config(alembic_config("")).get_revision(revision) is not None
    except CommandError:
        return False


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations synchronously (call from a thread when inside an event loop)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("")).get_current_head()
    assert head is not None
    return head


async def current_revision(pool: asyncpg.Pool) -> str | None:
    try:
        return await pool.fetchval("SELECT version_num FROM alembic_version")  # type: ignore[no-any-return]
    except asyncpg.UndefinedTableError:
        return None
