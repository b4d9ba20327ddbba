"""``paygrid restore``: fence writes, restore a backup, re-sync with the providers, reopen
(issue 16 §5, docs/operations.md). The steps live in ``services/restore/restoring.py``;
this module builds what they need (the Deps of the restored database) and prints the
summary with each step's time."""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from paygrid.bootstrap import build_deps
from paygrid.clock import SYSTEM_CLOCK
from paygrid.config import Settings, get_settings
from paygrid.db import audit as audit_db
from paygrid.db import engine
from paygrid.db.runtime import resolve_database
from paygrid.dependencies import Deps
from paygrid.services.backups.archive import BackupError
from paygrid.services.restore import restoring
from paygrid.services.restore.restoring import RestoreOptions, RestoreReport, ResyncIncomplete

console = Console(soft_wrap=True, highlight=False)
errors = Console(stderr=True, soft_wrap=True, highlight=False)


def deps_opener(url: str, settings: Settings) -> restoring.OpenDeps:
    """The Deps of the restored database: pools opened after the restore (nothing cached
    from before it), closed with the provider connections once the re-sync is done."""

    @asynccontextmanager
    async def open_deps() -> AsyncIterator[Deps]:
        pool = await engine.create_pool(url, 4)
        bookkeeping = await engine.create_pool(url, 2, durable=False)
        deps = build_deps(pool, settings, bookkeeping_pool=bookkeeping)
        try:
            yield deps
        finally:
            await deps.connectors.aclose()
            await bookkeeping.close()
            await pool.close()

    return open_deps


async def run_restore(url: str, archive: Path, options: RestoreOptions) -> RestoreReport:
    """The whole restore, with its steps printed as they start."""

    async def progress(stage: str) -> None:
        errors.print(f"[dim]…[/dim] {escape(stage)}")

    audit_db.act_as(f"cli:{getpass.getuser()}")
    return await restoring.restore(
        url, archive, deps_opener(url, get_settings()), SYSTEM_CLOCK, options, progress
    )


def print_report(report: RestoreReport) -> None:
    """The summary: the archive, each step's time, and each account's re-sync."""
    manifest = report.manifest
    console.print(
        f"Restored the backup of {manifest.created_at:%Y-%m-%d %H:%M:%S %Z} "
        f"({manifest.total_rows:,} rows, schema {manifest.schema_revision})"
        + (f"; migrated from {report.migrated_from}" if report.migrated_from else "")
    )
    steps = Table("step", "seconds", title="Timings")
    for name, seconds in report.timings.items():
        steps.add_row(name, f"{seconds:.2f}")
    steps.add_row("[bold]total[/bold]", f"[bold]{report.total_seconds:.2f}[/bold]")
    console.print(steps)
    accounts = Table(
        "account", "provider", "listed", "known", "re-imported", "refunds", "answered",
        "note",
        title="Re-sync since the backup",
    )  # fmt: skip
    for found in report.accounts:
        note = found.error or "; ".join(found.skipped[:3])
        accounts.add_row(
            found.account_id,
            found.provider,
            str(found.listed),
            str(found.already_known),
            str(found.imported),
            str(found.refunds_imported),
            str(found.refunds_reattached),
            f"[red]{escape(note)}[/red]" if found.error else escape(note),
        )
    console.print(accounts if report.accounts else "No connector accounts to re-sync.")


def _options(
    drain_timeout: float, settle: float | None, retry_after: int, jobs: int
) -> RestoreOptions:
    """The restore's options from the command line (warning about a deprecated one)."""
    if settle is not None:  # the fixed sleep it set gave way to the drain
        errors.print(
            "[yellow]warning:[/yellow] --settle is deprecated and ignored; "
            "the restore waits for what is in flight (--drain-timeout)"
        )
    return RestoreOptions(drain_timeout_seconds=drain_timeout, retry_after=retry_after, jobs=jobs)


def _restore_and_report(url: str, file: Path, options: RestoreOptions) -> None:
    """Run the restore and print its summary, or why it failed (exit code 1)."""
    try:
        report = asyncio.run(run_restore(url, file, options))
    except ResyncIncomplete as error:
        print_report(error.report)
        errors.print(f"[red]error:[/red] {escape(str(error))}")
        errors.print("The fence stays up; see `paygrid restore --reopen`.")
        raise typer.Exit(1) from error
    except BackupError as error:
        errors.print(f"[red]error:[/red] {escape(str(error))}")
        errors.print("If the fence was raised it stays up; see `paygrid restore --reopen`.")
        raise typer.Exit(1) from error
    print_report(report)


def restore(
    file: Annotated[
        Path | None, typer.Argument(help="The backup archive (paygrid-….pgbackup.tar).")
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", help="Replace the database without asking.")
    ] = False,
    reopen: Annotated[
        bool,
        typer.Option("--reopen", help="Only lower a fence a failed restore left raised."),
    ] = False,
    drain_timeout: Annotated[
        float,
        typer.Option(
            help="Seconds to wait, after raising the fence, for the requests and jobs in "
            "flight to finish; refused (nothing emptied) past it.",
            min=0,
        ),
    ] = 90.0,
    settle: Annotated[float | None, typer.Option(hidden=True, help="Deprecated: ignored.")] = None,
    retry_after: Annotated[
        int, typer.Option(help="The Retry-After fenced requests are answered with.")
    ] = 30,
    jobs: Annotated[int, typer.Option(help="Parallel pg_restore jobs.")] = 1,
) -> None:
    """Fence writes, replace the database with a backup, re-sync every connector account
    since the backup's time, then reopen (docs/operations.md, "Restore")."""
    url, embedded = resolve_database(get_settings())
    url = engine.direct_url(url)  # pg_restore and the fence's NOTIFY never go through a pooler
    try:
        if reopen:
            lowered = asyncio.run(restoring.reopen(url))
            console.print("Fence lowered: writes are open." if lowered else "No fence was up.")
            return
        if file is None:
            raise typer.BadParameter("FILE is required (or --reopen)")
        if not yes:
            typer.confirm(f"Replace everything in the database with {file.name}?", abort=True)
        _restore_and_report(url, file, _options(drain_timeout, settle, retry_after, jobs))
    finally:
        if embedded is not None:
            embedded.release()
