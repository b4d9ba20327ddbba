"""``paygrid backup verify``: restore an archive into a scratch database it creates and
drops, and check it against its manifest: the dump's sha256, every table's row count and
content checksum, the audit hash chain (verified link by link in the restored database)
and each merchant's chain head. The result goes into the ``backups`` catalog."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import asyncpg

from paygrid.clock import SYSTEM_CLOCK, Clock
from paygrid.db import backups as backups_db
from paygrid.db import engine
from paygrid.services import audit as audit_service
from paygrid.services.backups import catalog, contents
from paygrid.services.backups.archive import (
    AuditHead,
    BackupError,
    Manifest,
    TableSummary,
    read_manifest,
    restore_into,
)


@dataclass(frozen=True, slots=True)
class VerifyReport:
    path: Path
    manifest: Manifest
    problems: tuple[str, ...]  # empty when the backup verified

    @property
    def passed(self) -> bool:
        return not self.problems


async def verify_backup(
    pool: asyncpg.Pool,
    database_url: str,
    path: Path,
    *,
    clock: Clock = SYSTEM_CLOCK,
    pg_bin_dir: Path | None = None,
    jobs: int = 1,
) -> VerifyReport:
    """Verify the archive at ``path`` in a scratch database on ``database_url``'s server
    (the role needs CREATEDB) and record the outcome in ``pool``'s catalog. Raises
    ``ArchiveUnreadable``, ``ArchiveCorrupt`` or ``RestoreFailed`` (a ``BackupError``)
    when it cannot be restored at all; other differences are the report's ``problems``."""
    manifest = read_manifest(path)  # unreadable: nothing to record, it names no backup
    try:
        problems = await _check(database_url, path, manifest, pg_bin_dir, jobs)
    except BackupError as error:
        await catalog.record_verification(pool, path, manifest, clock, str(error))
        raise
    await catalog.record_verification(pool, path, manifest, clock, "; ".join(problems) or None)
    return VerifyReport(path, manifest, tuple(problems))


async def _check(
    database_url: str, path: Path, manifest: Manifest, pg_bin_dir: Path | None, jobs: int
) -> list[str]:
    async with backups_db.scratch_database(database_url) as scratch:
        url = backups_db.scratch_url(database_url, scratch)
        await restore_into(url, path, pg_bin_dir=pg_bin_dir, jobs=jobs)
        restored = await engine.create_pool(url, 2, pooler=False)
        try:
            async with restored.acquire() as conn, backups_db.consistent_read(conn):
                tables = await contents.tables(conn)
                heads = await contents.audit_heads(conn)
            chains = await audit_service.verify(restored)
        finally:
            await restored.close()
    problems = compare_tables(manifest.tables, tables) + compare_heads(manifest.audit_heads, heads)
    problems += [
        f"audit chain of {c.merchant_id} broken at {c.broken.entry_id} (#{c.broken.seq}):"
        f" {c.broken.reason}"
        for c in chains
        if c.broken is not None
    ]
    return problems


def compare_tables(
    expected: tuple[TableSummary, ...], found: tuple[TableSummary, ...]
) -> list[str]:
    """What differs between the manifest's tables and the restored ones."""
    have = {t.name: t for t in found}
    problems = []
    for table in expected:
        restored = have.pop(table.name, None)
        if restored is None:
            problems.append(f"table {table.name} is missing")
        elif restored.rows != table.rows:
            problems.append(f"table {table.name}: {restored.rows} rows, manifest {table.rows}")
        elif restored.checksum != table.checksum:
            problems.append(f"table {table.name}: content checksum differs from the manifest")
    problems += [f"table {name} is not in the manifest" for name in sorted(have)]
    return problems


def compare_heads(expected: tuple[AuditHead, ...], found: tuple[AuditHead, ...]) -> list[str]:
    """What differs between the manifest's audit chain heads and the restored ones."""
    have = {h.merchant_id: h for h in found}
    problems = []
    for head in expected:
        restored = have.pop(head.merchant_id, None)
        if restored is None:
            problems.append(f"audit chain of {head.merchant_id} is missing")
        elif restored != head:
            problems.append(
                f"audit chain head of {head.merchant_id}: seal #{restored.seq}"
                f" {restored.hash[:16]}, manifest #{head.seq} {head.hash[:16]}"
            )
    problems += [f"audit chain of {m} is not in the manifest" for m in sorted(have)]
    return problems
