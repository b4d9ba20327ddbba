"""The backup archive: one uncompressed POSIX tar file holding, in this order,

``manifest.json``
    what the backup holds (``Manifest``), UTF-8 JSON;
``database.dump``
    ``pg_dump --format=custom`` of the whole database (compressed by pg_dump itself).

The manifest comes first so that reading it never scans the dump; ``tar tf`` and ``tar xf``
open the archive with no paygrid at hand (docs/operations.md, "Backups"). The file is
written as ``<name>.partial`` and renamed once complete, so a finished name is never a
half-written archive; a truncated or damaged one is refused with ``ArchiveUnreadable`` or
``ArchiveCorrupt``.

The manifest is not signed: it catches damage (a truncated copy, a flipped bit, an edited
dump), not someone who rewrites both the dump and its checksum.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from paygrid.db import pg_programs

FORMAT: Final = "paygrid-backup"
FORMAT_VERSION: Final = 1
MANIFEST_MEMBER: Final = "manifest.json"
DUMP_MEMBER: Final = "database.dump"
SUFFIX: Final = ".pgbackup.tar"
_CHUNK: Final = 1 << 20


class BackupError(Exception):
    """The backup failed."""


class ArchiveUnreadable(BackupError):
    """The file is not a complete paygrid backup archive (empty, truncated or not one)."""


class ArchiveCorrupt(BackupError):
    """The archive's content does not match its manifest."""


class RestoreFailed(BackupError):
    """pg_restore could not restore the archive's dump."""


@dataclass(frozen=True, slots=True)
class TableSummary:
    """One table at backup time: its row count and a content checksum (the sum, modulo
    2**64, of the first 64 bits of md5 of each row's text form, hex): independent of row
    order, so the same rows restored anywhere give the same value."""

    name: str  # schema-qualified, e.g. "public.payments"
    rows: int
    checksum: str


@dataclass(frozen=True, slots=True)
class AuditHead:
    """Where a merchant's audit hash chain ended at backup time (``paygrid audit verify``):
    its last seal (``seq`` 0 and ``last_id`` "" before the first) and that seal's hash."""

    merchant_id: str
    seq: int
    last_id: str
    hash: str  # hex
    unsealed: int  # entries written but not sealed yet (sealed after a restore)


@dataclass(frozen=True, slots=True)
class Manifest:
    format_version: int
    created_at: datetime  # UTC, when the dump's snapshot was taken
    database: str
    server_version: str  # e.g. "16.2"
    server_version_num: int  # e.g. 160002
    pg_dump_version: int  # major version of the pg_dump that wrote the dump
    app_version: str  # paygrid's version
    schema_revision: str | None  # alembic revision of the database
    dump_sha256: str  # hex sha256 of database.dump
    dump_bytes: int
    tables: tuple[TableSummary, ...]  # sorted by name
    audit_heads: tuple[AuditHead, ...]  # sorted by merchant_id

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables)

    def to_json(self) -> bytes:
        data = asdict(self)
        data["format"] = FORMAT
        data["created_at"] = self.created_at.isoformat()
        return json.dumps(data, indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        try:
            data: dict[str, Any] = json.loads(raw)
            if data.pop("format", None) != FORMAT:
                raise ArchiveUnreadable("manifest.json is not a paygrid backup manifest")
            if data["format_version"] != FORMAT_VERSION:
                raise ArchiveUnreadable(
                    f"backup format {data['format_version']} is not supported"
                    f" (this paygrid reads {FORMAT_VERSION})"
                )
            data["created_at"] = datetime.fromisoformat(data["created_at"])
            data["tables"] = tuple(TableSummary(**t) for t in data["tables"])
            data["audit_heads"] = tuple(AuditHead(**h) for h in data["audit_heads"])
            return cls(**data)
        except (ValueError, KeyError, TypeError) as error:
            raise ArchiveUnreadable(f"manifest.json is damaged: {error}") from error


def _members(archive: tarfile.TarFile, path: Path) -> tuple[tarfile.TarInfo, tarfile.TarInfo]:
    """The manifest and dump members, checked to be complete within the file's size."""
    try:
        members = archive.getmembers()
    except (tarfile.TarError, EOFError, OSError) as error:
        raise ArchiveUnreadable(f"{path}: truncated or not a tar archive ({error})") from error
    names = [m.name for m in members]
    if names != [MANIFEST_MEMBER, DUMP_MEMBER] or not all(m.isfile() for m in members):
        raise ArchiveUnreadable(f"{path}: not a paygrid backup (it holds {names})")
    size = path.stat().st_size
    for member in members:
        if member.offset_data + member.size > size:
            raise ArchiveUnreadable(f"{path}: truncated inside {member.name}")
    return members[0], members[1]


def read_manifest(path: Path) -> Manifest:
    """The archive's manifest. Cheap: reads the tar headers and the manifest, not the dump.
    Raises ``ArchiveUnreadable`` for a missing, empty, truncated or foreign file."""
    try:
        if path.stat().st_size == 0:
            raise ArchiveUnreadable(f"{path}: empty file (0 bytes)")
        with tarfile.open(path, mode="r:") as archive:
            manifest_info, dump_info = _members(archive, path)
            extracted = archive.extractfile(manifest_info)
            assert extracted is not None  # a regular file, checked above
            manifest = Manifest.from_json(extracted.read())
    except FileNotFoundError as error:
        raise ArchiveUnreadable(f"{path}: no such file") from error
    except OSError as error:  # a directory, no permission, an I/O error
        raise ArchiveUnreadable(f"{path}: cannot be read ({error})") from error
    except (tarfile.TarError, EOFError) as error:
        raise ArchiveUnreadable(f"{path}: truncated or not a tar archive ({error})") from error
    if dump_info.size != manifest.dump_bytes:
        raise ArchiveCorrupt(
            f"{path}: the dump holds {dump_info.size} bytes, the manifest says"
            f" {manifest.dump_bytes}"
        )
    return manifest


def write_archive(path: Path, manifest: Manifest, dump_file: Path) -> None:
    """Write the archive to ``path`` (via ``path.partial`` and an atomic rename, fsynced)."""
    partial = path.with_name(path.name + ".partial")
    try:
        with (
            open(partial, "wb") as raw,
            tarfile.open(fileobj=raw, mode="w:", format=tarfile.PAX_FORMAT) as archive,
        ):
            body = manifest.to_json()
            info = tarfile.TarInfo(MANIFEST_MEMBER)
            info.size, info.mtime, info.mode = (
                len(body),
                int(manifest.created_at.timestamp()),
                0o600,
            )
            archive.addfile(info, io.BytesIO(body))
            info = archive.gettarinfo(str(dump_file), arcname=DUMP_MEMBER)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with open(dump_file, "rb") as dump:
                archive.addfile(info, dump)
            archive.close()
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def extract_dump(path: Path, into: Path) -> Manifest:
    """Copy the archive's dump to the file ``into``, checking its sha256 on the way; raises
    ``ArchiveCorrupt`` when it differs from the manifest's."""
    manifest = read_manifest(path)
    digest = hashlib.sha256()
    with tarfile.open(path, mode="r:") as archive:
        _, dump_info = _members(archive, path)
        source = archive.extractfile(dump_info)
        assert source is not None
        with open(into, "wb") as target:
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
                target.write(chunk)
    if digest.hexdigest() != manifest.dump_sha256:
        raise ArchiveCorrupt(
            f"{path}: the dump's sha256 is {digest.hexdigest()}, the manifest says"
            f" {manifest.dump_sha256}: the archive is damaged"
        )
    return manifest


@dataclass(frozen=True, slots=True)
class CheckedDump:
    """An archive ready to restore: its manifest, its dump extracted (sha256 checked) and
    the pg_restore that can read it into this server found."""

    manifest: Manifest
    dump_file: Path
    bin_dir: Path
    archive: Path


@asynccontextmanager
async def checked_dump(
    database_url: str, path: Path, *, pg_bin_dir: Path | None = None
) -> AsyncIterator[CheckedDump]:
    """Everything a restore can check before it touches the database: the archive read,
    its dump extracted to a temporary directory with its sha256 checked, and a pg_restore
    of a major version that reads both the dump and this server. Raises
    ``ArchiveUnreadable``, ``ArchiveCorrupt`` or ``RestoreFailed``; the dump is removed on
    leaving."""
    if pg_bin_dir is None:
        pg_bin_dir = _configured_bin_dir()
    with tempfile.TemporaryDirectory(prefix="paygrid-restore-") as scratch:
        dump_file = Path(scratch) / DUMP_MEMBER
        manifest = await asyncio.to_thread(extract_dump, path, dump_file)
        try:
            server = await pg_programs.server_version(database_url)
            programs = pg_programs.bin_dir(max(server.major, manifest.pg_dump_version), pg_bin_dir)
        except pg_programs.PgProgramError as error:
            raise RestoreFailed(f"{path}: {error}") from error
        yield CheckedDump(manifest, dump_file, programs, path)


async def restore_checked(database_url: str, checked: CheckedDump, *, jobs: int = 1) -> None:
    """pg_restore a ``checked_dump`` into the EXISTING, EMPTY database at ``database_url``;
    it stops at the first error (``RestoreFailed``)."""
    try:
        await pg_programs.restore(
            database_url, checked.dump_file, bin_dir=checked.bin_dir, jobs=jobs
        )
    except pg_programs.PgProgramError as error:
        raise RestoreFailed(f"{checked.archive}: {error}") from error


async def restore_into(
    database_url: str,
    path: Path,
    *,
    pg_bin_dir: Path | None = None,
    jobs: int = 1,
) -> Manifest:
    """Restore the archive into the EXISTING, EMPTY database at ``database_url`` and return
    its manifest. The dump's sha256 is checked before anything is written; pg_restore stops
    at the first error. ``pg_bin_dir`` overrides the choice of pg_restore (default: the
    ``PAYGRID_PG_BIN_DIR`` setting, else by the server's version); ``jobs`` > 1 restores
    tables and indexes in parallel. Raises ``ArchiveUnreadable``, ``ArchiveCorrupt`` or
    ``RestoreFailed``; it never creates or drops the database."""
    async with checked_dump(database_url, path, pg_bin_dir=pg_bin_dir) as checked:
        await restore_checked(database_url, checked, jobs=jobs)
    return checked.manifest


def _configured_bin_dir() -> Path | None:
    from paygrid.config import get_settings  # read only when the caller passed none

    return get_settings().pg_bin_dir
