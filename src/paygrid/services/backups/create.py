"""``paygrid backup create``: dump the database and its manifest into one archive
(layout in ``archive``), then add it to the ``backups`` catalog."""

from __future__ import annotations

import asyncio
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from paygrid.clock import SYSTEM_CLOCK, Clock
from paygrid.db import backups as backups_db
from paygrid.db import pg_programs
from paygrid.services.backups import catalog, contents
from paygrid.services.backups.archive import (
    DUMP_MEMBER,
    FORMAT_VERSION,
    SUFFIX,
    BackupError,
    Manifest,
    sha256_file,
    write_archive,
)


@dataclass(frozen=True, slots=True)
class CreatedBackup:
    path: Path
    manifest: Manifest


async def create_backup(
    pool: asyncpg.Pool,
    database_url: str,
    directory: Path,
    *,
    clock: Clock = SYSTEM_CLOCK,
    pg_bin_dir: Path | None = None,
) -> CreatedBackup:
    """Write a backup of the database at ``database_url`` (``pool`` reaches the same one)
    into ``directory`` and record it. Counts, checksums and audit heads are read in the
    snapshot pg_dump dumps, so they describe the dump exactly, while writes go on."""
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    try:
        server = await pg_programs.server_version(database_url)
        programs = pg_programs.bin_dir(server.major, pg_bin_dir)
    except pg_programs.PgProgramError as error:
        raise BackupError(str(error)) from error
    dump_major = pg_programs.program_major(programs) or server.major
    created_at = clock.now()
    path = await asyncio.to_thread(_free_name, directory, f"paygrid-{created_at:%Y%m%dT%H%M%SZ}")
    dump_file = directory / f".{path.name}.{DUMP_MEMBER}.partial"
    try:
        async with pool.acquire() as conn, backups_db.snapshot(conn) as snapshot:
            dumping = asyncio.create_task(
                pg_programs.dump(
                    database_url,
                    dump_file,
                    bin_dir=programs,
                    snapshot=snapshot,
                    exclude_schemas=backups_db.EXCLUDED_SCHEMAS,
                )
            )
            try:
                tables = await contents.tables(conn)
                heads = await contents.audit_heads(conn)
                database, revision = await backups_db.describe(conn)
            finally:
                # The snapshot must outlive pg_dump's reading of it.
                await asyncio.wait([dumping])
            dumping.result()
        manifest = Manifest(
            format_version=FORMAT_VERSION,
            created_at=created_at,
            database=database,
            server_version=server.text,
            server_version_num=server.num,
            pg_dump_version=dump_major,
            app_version=importlib.metadata.version("paygrid"),
            schema_revision=revision,
            dump_sha256=await asyncio.to_thread(sha256_file, dump_file),
            dump_bytes=dump_file.stat().st_size,
            tables=tables,
            audit_heads=heads,
        )
        await asyncio.to_thread(write_archive, path, manifest, dump_file)
    except pg_programs.PgProgramError as error:
        raise BackupError(str(error)) from error
    finally:
        dump_file.unlink(missing_ok=True)
    await catalog.record_archive(pool, path, manifest, clock)
    return CreatedBackup(path, manifest)


def _free_name(directory: Path, stem: str) -> Path:
    """``stem`` + the suffix, or with ``-2``, ``-3``... if a backup of that second exists."""
    path, n = directory / f"{stem}{SUFFIX}", 1
    while path.exists():
        n += 1
        path = directory / f"{stem}-{n}{SUFFIX}"
    return path
