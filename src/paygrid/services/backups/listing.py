"""``paygrid backup list``: the archives in the backup directory, with what the catalog
knows of them (newest first), and the catalog's archives that are no longer there."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from paygrid.db.executor import Executor
from paygrid.services.backups import catalog
from paygrid.services.backups.archive import SUFFIX, BackupError, Manifest, read_manifest


class ListedStatus(StrEnum):
    PASSED = "passed"  # paygrid backup verify passed
    FAILED = "failed"  # it failed
    UNVERIFIED = "unverified"  # never verified
    UNRECORDED = "not in catalog"  # a file the database does not know (copied, restored)
    UNREADABLE = "unreadable"  # empty, truncated or not an archive
    MISSING = "file missing"  # in the catalog, not in the directory


@dataclass(frozen=True, slots=True)
class ListedBackup:
    file_name: str
    created_at: datetime | None  # None when unreadable
    size: int
    status: ListedStatus
    detail: str | None  # why it failed or is unreadable


async def list_backups(conn: Executor, directory: Path) -> list[ListedBackup]:
    files = await asyncio.to_thread(_scan, directory)
    recorded = {row.file_name: row for row in await catalog.all_backups(conn)}
    listed = []
    for path, size, manifest, error in files:
        row = recorded.pop(path.name, None)
        if manifest is None:
            listed.append(ListedBackup(path.name, None, size, ListedStatus.UNREADABLE, error))
            continue
        if row is not None and row.dump_sha256 != manifest.dump_sha256:
            row = None  # another archive under a cataloged name
        status = ListedStatus.UNRECORDED if row is None else ListedStatus(row.verify_status)
        detail = None if row is None else row.failure
        listed.append(ListedBackup(path.name, manifest.created_at, size, status, detail))
    listed += [
        ListedBackup(row.file_name, row.created_at, row.bytes, ListedStatus.MISSING, None)
        for row in recorded.values()
    ]
    return sorted(listed, key=_newest_first)


def _newest_first(backup: ListedBackup) -> tuple[float, str]:
    taken = backup.created_at.timestamp() if backup.created_at is not None else float("inf")
    return (-taken, backup.file_name)


def _scan(directory: Path) -> list[tuple[Path, int, Manifest | None, str | None]]:
    """Every archive file in ``directory`` with its manifest (or why it has none)."""
    if not directory.is_dir():
        return []
    found: list[tuple[Path, int, Manifest | None, str | None]] = []
    for path in sorted(directory.glob(f"*{SUFFIX}")):
        size = path.stat().st_size
        try:
            found.append((path, size, read_manifest(path), None))
        except BackupError as error:
            found.append((path, size, None, str(error)))
    return found
