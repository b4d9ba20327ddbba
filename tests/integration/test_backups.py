"""``paygrid backup create / verify / list`` and ``paygrid_backup_age_seconds`` on a database
of this module's own (payments, audit entries and seals in it), through the real CLI and
the real pg_dump / pg_restore of the server's major version."""

from __future__ import annotations

import asyncio
import sys
import tarfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner, Result

from paygrid.app import create_app
from paygrid.bootstrap import build_deps
from paygrid.cli import app
from paygrid.config import Settings, get_settings
from paygrid.db import audit as audit_db
from paygrid.db import backups as backups_db
from paygrid.db import engine
from paygrid.domain import audit_chain
from paygrid.services import audit as audit_service
from paygrid.services.backups.archive import (
    DUMP_MEMBER,
    SUFFIX,
    ArchiveCorrupt,
    ArchiveUnreadable,
    TableSummary,
    read_manifest,
    write_archive,
)
from paygrid.services.backups.verify import verify_backup
from paygrid.services.merchants import create_merchant
from tests.conftest import DIRECT_URL, TEST_BASE_URL, Api, confirmed_payment, scratch_database

PAYMENTS = 4


@dataclass(frozen=True)
class Source:
    url: str
    pool: asyncpg.Pool
    http: httpx.AsyncClient
    merchant_id: str
    backup_dir: Path


@pytest.fixture(scope="module")
def source_url(server_url: str) -> Iterator[str]:
    with scratch_database(DIRECT_URL or server_url, "paygrid_backups") as url:
        engine.upgrade(url)
        yield url


@pytest.fixture(scope="module")
async def source(
    source_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Source]:
    """Payments of one merchant, most of its audit entries sealed and a few not yet."""
    pool = await engine.create_pool(source_url, 4, pooler=False)
    bookkeeping = await engine.create_pool(source_url, 2, durable=False, pooler=False)
    settings = Settings(public_url=TEST_BASE_URL)
    deps = build_deps(pool, settings, bookkeeping_pool=bookkeeping)
    transport = httpx.ASGITransport(app=create_app(settings, deps=deps))
    try:
        async with httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL) as http:
            merchant = await create_merchant(pool, "Backed up")
            api = Api(http, merchant.key("secret", livemode=False))
            for n in range(PAYMENTS):
                created = await api.post("/v1/payments", confirmed_payment(amount=1000 + n))
                assert created.status_code == 200, created.text
                if n == PAYMENTS - 2:
                    assert await audit_service.seal(pool) > 0
            yield Source(source_url, pool, http, merchant.id, tmp_path_factory.mktemp("backups"))
    finally:
        await deps.connectors.aclose()
        await bookkeeping.close()
        await pool.close()


def paygrid(source: Source, *args: str) -> Result:
    """``paygrid backup ARGS`` in this process (a new process spends seconds importing
    paygrid), on the module's database. Its ``asyncio.run`` needs a thread without a
    running loop: async tests call it through ``asyncio.to_thread``."""
    env: dict[str, str | None] = {
        "PAYGRID_DATABASE_URL": source.url,
        "PAYGRID_BACKUP_DIR": str(source.backup_dir),
        "PAYGRID_DATABASE_POOLER": None,
        "PAYGRID_DATABASE_DIRECT_URL": None,
        "COLUMNS": "250",
    }
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, ["backup", *args], env=env)
    finally:
        get_settings.cache_clear()


@pytest.fixture(scope="module")
async def archive(source: Source) -> Path:
    created = await asyncio.to_thread(paygrid, source, "create")
    assert created.exit_code == 0, created.output
    [path] = [Path(line) for line in created.stdout.splitlines() if line.endswith(SUFFIX)]
    assert path.parent == source.backup_dir and path.name.endswith(".pgbackup.tar")
    return path


async def test_the_manifest_describes_the_database(source: Source, archive: Path) -> None:
    manifest = read_manifest(archive)
    tables = {t.name: t for t in manifest.tables}
    for table in ("payments", "audit_log", "audit_seals", "merchants", "events"):
        count = await source.pool.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608
        assert tables[f"public.{table}"].rows == count, table
    assert tables["public.payments"].rows == PAYMENTS
    assert not any(name.startswith("paygrid_fence.") for name in tables)  # left out

    [head] = [h for h in manifest.audit_heads if h.merchant_id == source.merchant_id]
    expected = await audit_db.chain_head(source.pool, source.merchant_id, audit_chain.GENESIS)
    assert (head.seq, head.last_id, head.hash) == (
        expected.seq,
        expected.last_id,
        expected.hash.hex(),
    )
    assert head.seq >= 1 and head.unsealed > 0  # entries of the last payment wait for a seal

    assert manifest.schema_revision == engine.head_revision()
    assert manifest.server_version_num // 10000 == manifest.pg_dump_version
    assert manifest.dump_bytes == _dump_size(archive)


async def test_create_then_verify_passes(source: Source, archive: Path) -> None:
    verified = await asyncio.to_thread(paygrid, source, "verify", str(archive))
    assert verified.exit_code == 0, verified.output
    assert "verified" in verified.stdout and f"{len(read_manifest(archive).tables)} tables" in (
        verified.stdout
    )
    status = await source.pool.fetchval(
        "SELECT verify_status FROM backups WHERE file_name = $1", archive.name
    )
    assert status == "passed"
    # The scratch database is gone.
    left = await source.pool.fetchval(
        "SELECT count(*) FROM pg_database WHERE datname LIKE 'paygrid\\_verify\\_%'"
    )
    assert left == 0


_HOLD_A_SCRATCH_DATABASE = """
import asyncio, sys
from paygrid.db import backups

async def main(url: str) -> None:
    async with backups.scratch_database(url) as name:
        print(name, flush=True)
        await asyncio.sleep(600)

asyncio.run(main(sys.argv[1]))
"""


async def _scratch_holder(url: str) -> tuple[asyncio.subprocess.Process, str]:
    """A process inside ``scratch_database`` (a verify in the middle of its restore)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOLD_A_SCRATCH_DATABASE, url, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    name = (await asyncio.wait_for(process.stdout.readline(), 30)).decode().strip()
    assert name.startswith(backups_db.SCRATCH_PREFIX), name
    return process, name


async def _scratch_databases(pool: asyncpg.Pool) -> set[str]:
    rows = await pool.fetch(
        "SELECT datname FROM pg_database WHERE datname LIKE 'paygrid\\_verify\\_%'"
    )
    return {row["datname"] for row in rows}


async def test_verify_sweeps_what_a_killed_verify_left_and_keeps_a_running_one(
    source: Source, archive: Path
) -> None:
    # A verify of another database on the same server: its lock lives in that database.
    other_url = backups_db.scratch_url(source.url, "postgres")
    killed, left_behind = await _scratch_holder(source.url)
    running, in_use = await _scratch_holder(source.url)
    elsewhere, theirs = await _scratch_holder(other_url)
    try:
        killed.kill()  # SIGKILL: its drop never runs
        await killed.wait()
        assert {left_behind, in_use, theirs} <= await _scratch_databases(source.pool)

        verified = await asyncio.to_thread(paygrid, source, "verify", str(archive))
        assert verified.exit_code == 0, verified.output

        remaining = await _scratch_databases(source.pool)
        assert left_behind not in remaining  # swept by the next verify
        assert in_use in remaining  # its owner still runs: never dropped under it
        assert theirs in remaining  # another database's verify: not this one's to judge
    finally:
        for holder in (running, elsewhere):
            holder.kill()
            await holder.wait()
    # The sweep is all a killed verify needs: the two others' databases are now abandoned,
    # each swept by the next verify of its own database.
    async with backups_db.scratch_database(source.url):
        pass
    async with backups_db.scratch_database(other_url):
        pass
    assert not {in_use, theirs} & await _scratch_databases(source.pool)


async def test_damaged_archives_fail_verify_loudly(source: Source, archive: Path) -> None:
    directory = source.backup_dir
    _write_damaged_copies(archive, directory)
    with pytest.raises(ArchiveUnreadable, match="0 bytes"):
        read_manifest(directory / "empty.pgbackup.tar")
    with pytest.raises(ArchiveUnreadable, match="truncated"):
        read_manifest(directory / "truncated.pgbackup.tar")
    with pytest.raises(ArchiveCorrupt, match="sha256"):
        await verify_backup(source.pool, source.url, directory / "corrupted.pgbackup.tar")

    expected = {
        "empty.pgbackup.tar": "empty file (0 bytes)",
        "truncated.pgbackup.tar": "truncated",
        "corrupted.pgbackup.tar": "sha256",
    }
    result = await asyncio.to_thread(
        paygrid, source, "verify", *(str(directory / name) for name in expected)
    )
    assert result.exit_code == 1, result.output
    failures = [line for line in result.stderr.splitlines() if line.startswith("FAILED")]
    assert len(failures) == 3, result.stderr
    for failure, (name, message) in zip(failures, expected.items(), strict=True):
        assert name in failure and message in failure, failure
    assert "3 of 3 backups FAILED verification" in result.stderr

    listed = await asyncio.to_thread(paygrid, source, "list")
    assert listed.exit_code == 0, listed.output
    lines = {line.split()[0]: line for line in listed.stdout.splitlines()[1:] if line.strip()}
    assert "passed" in lines[archive.name]
    assert "unreadable" in lines["empty.pgbackup.tar"]
    assert "unreadable" in lines["truncated.pgbackup.tar"]
    assert "failed" in lines["corrupted.pgbackup.tar"]  # its manifest reads; its dump did not
    assert next(iter(lines)) in expected  # unreadable ones come first, then newest first


async def test_a_manifest_that_does_not_match_the_dump_fails(
    source: Source, archive: Path, tmp_path: Path
) -> None:
    """A dump intact (its sha256 matches) restored, but counts and the audit head that
    differ from the manifest's: every difference is reported."""
    manifest = read_manifest(archive)
    tables = tuple(
        replace(t, rows=t.rows + 1) if t.name == "public.payments" else t for t in manifest.tables
    )
    heads = tuple(replace(h, hash="00" * 32) for h in manifest.audit_heads)
    dump = _extract_dump(archive, tmp_path)
    edited = source.backup_dir / "edited.pgbackup.tar"
    forged = replace(manifest, tables=(*tables, TableSummary("public.ghost", 1, "0" * 16)))
    write_archive(edited, replace(forged, audit_heads=heads), dump)

    report = await verify_backup(source.pool, source.url, edited)
    assert not report.passed
    problems = "\n".join(report.problems)
    assert f"public.payments: {PAYMENTS} rows, manifest {PAYMENTS + 1}" in problems
    assert "public.ghost is missing" in problems
    assert f"audit chain head of {source.merchant_id}" in problems
    with pytest.raises(ArchiveCorrupt):  # and its bytes must match the manifest's size
        write_archive(edited, replace(manifest, dump_bytes=manifest.dump_bytes + 1), dump)
        read_manifest(edited)


async def test_the_backup_age_is_on_metrics(source: Source, archive: Path) -> None:
    await source.pool.execute(
        "UPDATE backups SET created_at = created_at - interval '1 hour' WHERE file_name = $1",
        archive.name,
    )
    response = await source.http.get("/metrics")
    assert response.status_code == 200
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
    # The newest verified backup is the archive (passed above), an hour old now; the newest
    # of any status is a damaged copy of it (failed), with the original's time.
    assert 3600 <= samples["paygrid_backup_age_seconds"] < 3600 + 300
    assert samples["paygrid_backup_newest_age_seconds"] < 300


def _write_damaged_copies(archive: Path, directory: Path) -> None:
    data = archive.read_bytes()
    (directory / "empty.pgbackup.tar").write_bytes(b"")
    cut = _dump_offset(archive) + _dump_size(archive) // 2
    (directory / "truncated.pgbackup.tar").write_bytes(data[:cut])
    flipped = bytearray(data)
    flipped[cut] ^= 0xFF
    (directory / "corrupted.pgbackup.tar").write_bytes(bytes(flipped))


def _extract_dump(archive: Path, into: Path) -> Path:
    dump = into / DUMP_MEMBER
    with open(archive, "rb") as raw:
        raw.seek(_dump_offset(archive))
        dump.write_bytes(raw.read(_dump_size(archive)))
    return dump


def _dump_offset(archive: Path) -> int:
    with tarfile.open(archive) as tar:
        return tar.getmember(DUMP_MEMBER).offset_data


def _dump_size(archive: Path) -> int:
    with tarfile.open(archive) as tar:
        return tar.getmember(DUMP_MEMBER).size
