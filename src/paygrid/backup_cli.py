"""``paygrid backup``: create, verify and list backups (issue 16 §5, docs/operations.md).

The commands reach the database through the runner ``cli`` hands to ``make_app`` (it
starts the embedded server if needed, migrates and opens a pool), so this module stays
above the use cases and never touches ``paygrid.db``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Protocol, TypeVar

import asyncpg
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from paygrid.clock import SYSTEM_CLOCK
from paygrid.config import get_settings
from paygrid.services.backups.archive import BackupError
from paygrid.services.backups.create import CreatedBackup, create_backup
from paygrid.services.backups.listing import ListedBackup, ListedStatus, list_backups
from paygrid.services.backups.verify import VerifyReport, verify_backup

T = TypeVar("T")
console = Console(soft_wrap=True, highlight=False)
errors = Console(stderr=True, soft_wrap=True, highlight=False)
STATUS_STYLE = {
    ListedStatus.PASSED: "green",
    ListedStatus.FAILED: "red",
    ListedStatus.UNREADABLE: "red",
    ListedStatus.MISSING: "yellow",
    ListedStatus.UNVERIFIED: "yellow",
    ListedStatus.UNRECORDED: "yellow",
}

DirOption = Annotated[
    Path | None,
    typer.Option("--dir", help="Backup directory. Default: PAYGRID_BACKUP_DIR."),
]


class Runner(Protocol):
    """Runs ``work`` with a pool and the direct URL of the configured, migrated database."""

    def __call__(self, work: Callable[[asyncpg.Pool, str], Awaitable[T]]) -> T: ...


def make_app(run: Runner) -> typer.Typer:
    app = typer.Typer(help="Back up the database, and verify backups.", no_args_is_help=True)

    @app.command("create")
    def create(directory: DirOption = None) -> None:
        """Write a backup archive into the backup directory.

        The database's pg_dump and a manifest (row counts, checksums, audit chain heads), in
        one file; prints its path."""
        target = directory or get_settings().backup_dir
        settings = get_settings()
        try:
            created: CreatedBackup = run(
                lambda pool, url: create_backup(
                    pool, url, target, clock=SYSTEM_CLOCK, pg_bin_dir=settings.pg_bin_dir
                )
            )
        except BackupError as error:
            raise _fail(f"backup failed: {error}") from None
        manifest = created.manifest
        console.print(str(created.path))
        errors.print(
            f"{len(manifest.tables)} tables, {manifest.total_rows:,} rows,"
            f" {len(manifest.audit_heads)} audit chains, dump {_size(manifest.dump_bytes)}"
            f" (PostgreSQL {manifest.server_version}, pg_dump {manifest.pg_dump_version})"
        )

    @app.command("verify")
    def verify(
        files: Annotated[list[Path], typer.Argument(help="Archives (.pgbackup.tar).")],
        jobs: Annotated[int, typer.Option(min=1, help="pg_restore --jobs.")] = 1,
    ) -> None:
        """Restore each FILE into a scratch database and check it against its manifest.

        Checks the dump's checksum, every table's rows and content checksum and the audit
        chain; exits 1 when anything differs or an archive is damaged. The scratch database
        is created on the configured server and dropped afterwards."""
        settings = get_settings()

        async def work(pool: asyncpg.Pool, url: str) -> list[VerifyReport | BackupError]:
            outcomes: list[VerifyReport | BackupError] = []
            for file in files:
                try:
                    outcomes.append(
                        await verify_backup(
                            pool, url, file, pg_bin_dir=settings.pg_bin_dir, jobs=jobs
                        )
                    )
                except BackupError as error:  # unreadable, corrupt, or pg_restore refused it
                    outcomes.append(error)
            return outcomes

        failed = 0
        for file, outcome in zip(files, run(work), strict=True):
            failed += not _print_verification(file, outcome)
        if failed:
            raise _fail(f"{failed} of {len(files)} backups FAILED verification")

    @app.command("list")
    def list_(directory: DirOption = None) -> None:
        """List the backup directory's archives, newest first, and whether each verified."""
        target = directory or get_settings().backup_dir
        listed: list[ListedBackup] = run(lambda pool, _url: list_backups(pool, target))
        if not listed:
            errors.print(f"No backups in {escape(str(target))}.")
            return
        table = Table("file", "time (UTC)", "size", "verified?", box=None, pad_edge=False)
        for backup in listed:
            style = STATUS_STYLE[backup.status]
            status = f"[{style}]{backup.status.value}[/{style}]"
            if backup.detail:
                status += f" ({escape(backup.detail[:120])})"
            taken = f"{backup.created_at:%Y-%m-%d %H:%M:%S}" if backup.created_at else "-"
            table.add_row(escape(backup.file_name), taken, _size(backup.size), status)
        Console(width=max(160, console.width), highlight=False, soft_wrap=True).print(table)

    return app


def _print_verification(file: Path, outcome: VerifyReport | BackupError) -> bool:
    if isinstance(outcome, BackupError):
        errors.print(f"[red]FAILED[/red] {escape(str(outcome))}")
        return False
    if not outcome.passed:
        errors.print(f"[red]FAILED[/red] {escape(str(file))} does not match its manifest:")
        for problem in outcome.problems:
            errors.print(f"  - {escape(problem)}")
        return False
    manifest = outcome.manifest
    console.print(
        f"[green]verified[/green] {escape(str(file))}: {len(manifest.tables)} tables,"
        f" {manifest.total_rows:,} rows and {len(manifest.audit_heads)} audit chains match"
        f" (taken {manifest.created_at:%Y-%m-%d %H:%M:%S}Z)"
    )
    return True


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _fail(message: str) -> typer.Exit:
    errors.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(1)
