"""``paygrid reconcile``: run one reconciliation run of a connector account from the shell,
with a Rich progress display, then print its counts (docs/cli.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import asyncpg
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

from paygrid.bootstrap import build_deps
from paygrid.config import get_settings
from paygrid.db.reconciliation_runs import RunRow
from paygrid.schemas.reconciliation import ReconciliationRun
from paygrid.services.reconciliation import running
from paygrid.services.reconciliation.runs import create_cli_run

console = Console(stderr=True)


def moment(value: str) -> datetime:
    """Unix seconds, an ISO date (its midnight UTC) or an ISO date and time."""
    if value.isdigit():
        return datetime.fromtimestamp(int(value), UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is neither Unix seconds nor an ISO date") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


async def reconcile_account(
    pool: asyncpg.Pool, account: str, window: tuple[datetime, datetime], heal: bool
) -> ReconciliationRun:
    deps = build_deps(pool, get_settings())
    try:
        run = await create_cli_run(deps, account, window, heal=heal)
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,.0f} objects compared"),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task(f"{run.id}: queued", total=None)

            async def progress(stage: str, compared: int) -> None:
                bar.update(task, description=f"{run.id}: {stage}", completed=compared)

            done: RunRow | None = await running.process(deps, run.id, progress)
        assert done is not None
        return ReconciliationRun.from_row(done)
    finally:
        await deps.connectors.aclose()


AccountOption = Annotated[str, typer.Option("--account", help="Connector account (ca_...).")]
FromOption = Annotated[
    str, typer.Option("--from", help="Window start: Unix seconds or ISO date (inclusive).")
]
ToOption = Annotated[str, typer.Option("--to", help="Window end (exclusive).")]
HealOption = Annotated[
    bool, typer.Option(help="Heal status drift and import provider-side refunds.")
]
