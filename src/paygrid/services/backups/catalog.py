"""The ``backups`` catalog (migration 0028): which archives exist and how their last
verification went. ``paygrid_backup_age_seconds`` is read from it.

A restored database's catalog is the one of the moment its backup was taken: it names
neither that backup nor any later one. Verifying an archive (or ``record_archive`` after
a restore) puts it back."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

from paygrid.clock import Clock
from paygrid.db import backups as backups_db
from paygrid.db.backups import BackupRow, VerifyStatus
from paygrid.db.executor import Executor
from paygrid.services.backups.archive import Manifest

__all__ = ["BackupRow", "VerifyStatus", "newest", "record_archive", "record_verification"]


async def record_archive(conn: Executor, path: Path, manifest: Manifest, clock: Clock) -> None:
    """Catalog the archive at ``path`` (as not verified, unless it is already cataloged)."""
    size = (await asyncio.to_thread(path.stat)).st_size
    await backups_db.record(
        conn,
        dump_sha256=manifest.dump_sha256,
        file_name=path.name,
        created_at=manifest.created_at,
        size=size,
        recorded_at=clock.now(),
    )


async def record_verification(
    conn: Executor, path: Path, manifest: Manifest, clock: Clock, failure: str | None
) -> None:
    """Catalog the archive if needed, then the outcome of verifying it (``failure`` None:
    it passed)."""
    await record_archive(conn, path, manifest, clock)
    status = VerifyStatus.FAILED if failure else VerifyStatus.PASSED
    await backups_db.mark_verified(conn, path.name, status, clock.now(), failure)


async def all_backups(conn: Executor) -> list[BackupRow]:
    return await backups_db.list_all(conn)


async def newest(conn: Executor) -> tuple[datetime | None, datetime | None]:
    """When the newest verified backup, and the newest of any status, were taken."""
    return await backups_db.newest(conn)
