"""``paygrid restore``, in order: refuse an unreadable archive before touching anything;
raise the write fence and wait until every serve and worker process has finished the
requests and jobs it had in flight (``drain.py``; refused after ``drain_timeout_seconds``
with nothing emptied); empty the database (every schema but the fence's) and restore the
archive into it in place; migrate it up to head when the archive is older; re-sync every connector
account for the window since the backup; only then lower the fence. Each step is timed.

Why in place rather than into a new database renamed over the old one: a rename needs
every connection to the database closed (serving processes, workers, the LISTEN hubs that
carry the fence itself), the CREATEDB privilege and the database's settings copied; in
place, the processes keep their connections and only the fence's schema, which backups
leave out, has to survive, which it does. The operator keeps the archive, and whatever
was in the database is replaced: that is what a restore is for.

A failure after the fence is raised leaves it raised: a half-restored database must not
take writes. Run the command again, or ``paygrid restore --reopen`` once it is fixed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import asyncpg
import structlog

from paygrid.clock import Clock
from paygrid.db import audit as audit_db
from paygrid.db import engine
from paygrid.db import fence as fence_db
from paygrid.db import restore as restore_db
from paygrid.dependencies import Deps
from paygrid.services.backups.archive import (
    BackupError,
    Manifest,
    checked_dump,
    restore_checked,
)
from paygrid.services.restore.drain import LOST_GRACE_SECONDS, wait_for_drain
from paygrid.services.restore.fence import RESTORING
from paygrid.services.restore.resync import AccountResync, resync

log = structlog.get_logger("paygrid.restore")

# Builds the Deps of the restored database (the CLI's composition root does).
OpenDeps = Callable[[], AbstractAsyncContextManager[Deps]]
Progress = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RestoreOptions:
    # How long to wait for the requests and jobs in flight when the fence rises: above
    # Stripe's 80 s timeout, so a request waiting on a provider call can finish.
    drain_timeout_seconds: float = 90.0
    retry_after: int = 30  # what fenced requests are told
    jobs: int = 1  # pg_restore --jobs
    # How long a process whose LISTEN connection is gone is waited for (drain.py).
    lost_grace_seconds: float = LOST_GRACE_SECONDS


@dataclass(slots=True)
class RestoreReport:
    manifest: Manifest
    migrated_from: str | None = None  # None: the archive was at head already
    timings: dict[str, float] = field(default_factory=dict)  # step -> seconds, in order
    accounts: list[AccountResync] = field(default_factory=list)

    @property
    def total_seconds(self) -> float:
        return sum(self.timings.values())


async def restore(
    database_url: str,
    archive: Path,
    open_deps: OpenDeps,
    clock: Clock,
    options: RestoreOptions = RestoreOptions(),
    progress: Progress | None = None,
) -> RestoreReport:
    """Restore ``archive`` into the database at ``database_url`` (a direct URL, never a
    transaction pooler's) behind the write fence; see the module's docstring."""
    # Everything that can be checked is, before anything is touched: the archive, its
    # dump's checksum, a pg_restore that can read it into this server, and its schema.
    async with checked_dump(database_url, archive) as checked:
        report = RestoreReport(checked.manifest)
        if not engine.known_revision(checked.manifest.schema_revision):
            raise RestoreRefused(
                f"{archive.name} was taken by a newer paygrid (schema "
                f"{checked.manifest.schema_revision}); restore it with that version"
            )
        step = _Steps(report, progress)
        async with step("fence", "raising the write fence"):
            raised_at = await raise_fence(database_url, clock, options.retry_after)
            await _drained(database_url, raised_at, options, progress)
        # A process starting meanwhile migrates only after the restore (the migrations'
        # lock): never the empty schema pg_restore is about to fill.
        async with engine.migration_lock(database_url):
            async with step("empty", "emptying the database"):
                # Once more right before: a count may have risen again since, or a process
                # (re)registered that has not reported yet.
                await _drained(database_url, raised_at, options, progress)
                await _empty(database_url)
            async with step("restore", f"restoring {archive.name}"):
                await restore_checked(database_url, checked, jobs=options.jobs)
    async with step("migrate", "migrating to head"):
        report.migrated_from = await _migrate(database_url, report.manifest)
    async with step("resync", "re-syncing with the providers"), open_deps() as deps:
        audit_db.act_as(f"restore:{archive.name}")
        report.accounts = await resync(deps, report.manifest.created_at, progress)
    unsynced = [account for account in report.accounts if account.error is not None]
    if unsynced:
        # Reopening now could charge again what a provider charged after the backup.
        raise ResyncIncomplete(report, unsynced)
    async with step("reopen", "lowering the write fence"):
        await reopen(database_url)
    log.info("restore.completed", archive=archive.name, seconds=round(report.total_seconds, 2))
    return report


class RestoreRefused(BackupError):
    """The archive cannot be restored by this paygrid; nothing was touched."""


class ResyncIncomplete(BackupError):
    """The database was restored but an account could not be re-synced: the fence stays
    raised (``paygrid restore --reopen`` once it is dealt with)."""

    def __init__(self, report: RestoreReport, unsynced: list[AccountResync]) -> None:
        self.report = report
        names = "; ".join(f"{a.provider} {a.account_id}: {a.error}" for a in unsynced)
        super().__init__(f"the database is restored, but re-syncing failed for {names}")


async def raise_fence(database_url: str, clock: Clock, retry_after: int) -> datetime:
    """Raise the fence (creating its tables on a database older than migration 0031);
    returns its ``raised_at``."""
    async with _connection(database_url) as conn:
        await fence_db.ensure_table(conn)
        return await fence_db.raise_fence(conn, RESTORING, retry_after, clock.now())


async def reopen(database_url: str) -> bool:
    """Lower the fence: every serving process reopens within moments. False when it was
    not raised."""
    async with _connection(database_url) as conn:
        return await fence_db.lower_fence(conn)


async def _drained(
    database_url: str, raised_at: datetime, options: RestoreOptions, progress: Progress | None
) -> None:
    async with _connection(database_url) as conn:
        await wait_for_drain(
            conn, raised_at, options.drain_timeout_seconds, progress, options.lost_grace_seconds
        )


async def _empty(database_url: str) -> None:
    async with _connection(database_url) as conn:
        await restore_db.empty_schemas(conn, await restore_db.replaceable_schemas(conn))


async def _migrate(database_url: str, manifest: Manifest) -> str | None:
    if manifest.schema_revision == engine.head_revision():
        return None
    await asyncio.to_thread(engine.upgrade, database_url)
    return manifest.schema_revision or "(empty)"


@asynccontextmanager
async def _connection(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


class _Steps:
    """Times each step into the report and tells ``progress`` what starts."""

    def __init__(self, report: RestoreReport, progress: Progress | None) -> None:
        self.report = report
        self.progress = progress

    @asynccontextmanager
    async def __call__(self, name: str, description: str) -> AsyncIterator[None]:
        if self.progress is not None:
            await self.progress(description)
        started = time.perf_counter()
        try:
            yield
        finally:
            self.report.timings[name] = time.perf_counter() - started
