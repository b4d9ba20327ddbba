"""The ``paygrid`` command line."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Literal, TypeVar

import asyncpg
import prometheus_client
import typer
from rich.console import Console
from rich.table import Table

from paygrid import logs
from paygrid.api.security import warn_if_plaintext
from paygrid.config import Settings, get_settings
from paygrid.crypto import DecryptionFailed
from paygrid.db import audit as audit_db
from paygrid.db import customers as customers_db
from paygrid.db import engine
from paygrid.db import merchants as merchants_db
from paygrid.db.embedded import EmbeddedPostgres
from paygrid.db.runtime import resolve_database
from paygrid.demo import DEMO_USER_EMAIL, DemoMerchant, ensure_demo_merchant, ensure_demo_user
from paygrid.domain.errors import PaygridError, ResourceMissing
from paygrid.services import audit as audit_service
from paygrid.services import connector_accounts, dashboard_users, webhook_endpoints
from paygrid.services import customers as customer_service
from paygrid.services import merchants as merchant_service
from paygrid.worker.process import QUEUES, Background

app = typer.Typer(help="paygrid: a self-hosted payment gateway.", no_args_is_help=True)
merchants_app = typer.Typer(help="Manage merchants.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(merchants_app, name="merchants")
app.add_typer(keys_app, name="keys")
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
customers_app = typer.Typer(help="Customers' personal data.", no_args_is_help=True)
app.add_typer(customers_app, name="customers")
users_app = typer.Typer(help="Dashboard users.", no_args_is_help=True)
app.add_typer(users_app, name="users")
console = Console()
T = TypeVar("T")


def _with_pool(work: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
    """Run ``work`` against the configured database (starting the embedded one if needed),
    with the schema migrated."""
    settings = get_settings()
    url, embedded = resolve_database(settings)
    try:
        engine.upgrade(url)

        async def main() -> T:
            audit_db.act_as(f"cli:{getpass.getuser()}")  # what the command changes is its own
            pool = await engine.create_pool(url, 2)
            try:
                return await work(pool)
            finally:
                await pool.close()

        return asyncio.run(main())
    except PaygridError as error:
        console.print(f"[red]error:[/red] {error.message}")
        raise typer.Exit(1) from None
    finally:
        _leave(embedded)


def _leave(embedded: EmbeddedPostgres | None) -> None:
    """Release this process's handle on the embedded server. pgserver counts handles, so the
    server keeps running while another process (such as ``make run``) still uses it."""
    if embedded is not None:
        embedded.release()


@app.command()
def migrate() -> None:
    """Apply database migrations up to the newest."""
    settings = get_settings()
    url, embedded = resolve_database(settings)
    try:
        engine.upgrade(url)
        console.print(f"migrated to {engine.head_revision()}")
    finally:
        _leave(embedded)


@app.command()
def serve(
    demo: Annotated[bool, typer.Option(help="Create (once) and print the demo merchant.")] = False,
) -> None:
    """Migrate, then serve the API on PAYGRID_HOST:PAYGRID_PORT until Ctrl-C."""
    import uvicorn

    settings = get_settings()
    url, embedded = resolve_database(settings)
    try:
        engine.upgrade(url)
        if demo:
            merchant = asyncio.run(_demo(url, settings.data_dir))
            console.print(f"demo merchant: {merchant.id}")
            console.print(f"secret key: {merchant.secret_key}", highlight=False)
            console.print(f"publishable key: {merchant.publishable_key}", highlight=False)
            password = asyncio.run(_demo_user(url, settings.data_dir, merchant.id))
            console.print(
                f"dashboard: {settings.base_url()}/dashboard  login: {DEMO_USER_EMAIL} / {password}",
                highlight=False,
            )
            console.print(f"demo store: {settings.base_url()}/demo/store", highlight=False)
            os.environ["PAYGRID_DEMO_STORE"] = "true"  # the app factory serves /demo/store
        logs.configure(settings.log_level)
        warn_if_plaintext(settings, live_mode=asyncio.run(_live_mode_in_use(url)))
        console.print(f"serving on {settings.base_url()}  (API docs: {settings.base_url()}/docs)")
        os.environ["PAYGRID_DATABASE_URL"] = url  # the app factory (and each worker) reads it
        # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal; exit normally
        # instead, so the embedded server below is released rather than left running.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        uvicorn.run(
            "paygrid.app:app_from_environment",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.http_workers,
            log_config=None,
            access_log=False,
            ssl_certfile=settings.tls_certfile,
            ssl_keyfile=settings.tls_keyfile,
        )
    finally:
        _leave(embedded)
        if embedded is not None:
            console.print(
                "embedded PostgreSQL released (stopped unless another paygrid process uses it)"
            )


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


async def _live_mode_in_use(url: str) -> bool:
    pool = await engine.create_pool(url, 2)
    try:
        return await merchants_db.live_mode_in_use(pool)
    finally:
        await pool.close()


async def _demo(url: str, data_dir: Path) -> DemoMerchant:
    pool = await engine.create_pool(url, 2)
    try:
        return await ensure_demo_merchant(pool, Path(data_dir))
    finally:
        await pool.close()


async def _demo_user(url: str, data_dir: Path, merchant_id: str) -> str:
    pool = await engine.create_pool(url, 2)
    try:
        return await ensure_demo_user(pool, Path(data_dir), merchant_id)
    finally:
        await pool.close()


@merchants_app.command("create")
def merchants_create(
    name: Annotated[str, typer.Option(help="The merchant's name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create a merchant with test and live keys. Keys are shown only this once."""
    merchant = _with_pool(lambda pool: merchant_service.create_merchant(pool, name))
    secret, publishable = merchant.key("secret", False), merchant.key("publishable", False)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "id": merchant.id,
                    "secret_key": secret,
                    "publishable_key": publishable,
                    "live_secret_key": merchant.key("secret", True),
                    "live_publishable_key": merchant.key("publishable", True),
                }
            )
        )
        return
    console.print(f"merchant: {merchant.id}")
    for key in merchant.keys:
        console.print(
            f"{key.kind} key ({'live' if key.livemode else 'test'}): {key.secret}", highlight=False
        )
    console.print("[yellow]Store these keys now; they are not shown again.[/yellow]")


@merchants_app.command("list")
def merchants_list() -> None:
    """List merchants."""
    rows = _with_pool(merchants_db.list_merchants)
    table = Table("id", "name", "created")
    for row in rows:
        table.add_row(row["id"], row["name"], row["created_at"].isoformat(timespec="seconds"))
    console.print(table)


@keys_app.command("create")
def keys_create(
    merchant: Annotated[str, typer.Option(help="Merchant id (mer_...).")],
    kind: Annotated[
        Literal["secret", "publishable"], typer.Option(help="secret or publishable.")
    ] = "secret",
    mode: Annotated[Literal["test", "live"], typer.Option(help="test or live.")] = "test",
    name: Annotated[str | None, typer.Option(help="A label for the key.")] = None,
    role: Annotated[
        str | None,
        typer.Option(help="Secret keys: admin, operator, support or viewer."),
    ] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option(
            help="Secret keys, instead of a role, repeatable: resource:read|write for "
            "payments, refunds, customers, webhooks, connector_accounts, admin."
        ),
    ] = None,
) -> None:
    """Create an API key; it is shown only this once. Without --role or --scope a secret
    key may do everything but administration."""

    async def work(pool: asyncpg.Pool) -> tuple[asyncpg.Record, str]:
        if await merchants_db.get_merchant(pool, merchant) is None:
            raise ResourceMissing(f"No such merchant: '{merchant}'")
        return await merchant_service.create_key(
            pool, merchant, mode == "live", kind=kind, name=name, role=role, scopes=scope
        )

    row, secret = _with_pool(work)
    console.print(f"{row['id']}: {secret}", highlight=False)


@keys_app.command("list")
def keys_list(merchant: Annotated[str, typer.Option(help="Merchant id (mer_...).")]) -> None:
    """List a merchant's keys (never the secrets)."""
    rows = _with_pool(lambda pool: merchants_db.list_keys(pool, merchant))
    table = Table("id", "kind", "mode", "ends with", "name", "last used", "revoked")
    for row in rows:
        table.add_row(
            row["id"],
            row["kind"],
            "live" if row["livemode"] else "test",
            row["last4"],
            row["name"] or "",
            _when(row["last_used_at"]),
            _when(row["revoked_at"]),
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="Key id (key_...).")]) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    row = _with_pool(lambda pool: merchant_service.revoke_key(pool, key_id))
    console.print(f"revoked {row['id']}")


@users_app.command("create")
def users_create(
    merchant: Annotated[str, typer.Option(help="Merchant id (mer_...).")],
    email: Annotated[str, typer.Option(help="The address the user signs in with.")],
    role: Annotated[str, typer.Option(help="admin, operator, support or viewer.")],
    password: Annotated[
        str | None,
        typer.Option(help="Prompted for (not echoed) when left out; avoid it in shell history."),
    ] = None,
) -> None:
    """Create a dashboard user who signs in at /dashboard with this email and password."""
    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    secret = password
    user = _with_pool(
        lambda pool: dashboard_users.create_user(
            pool, merchant_id=merchant, email=email, role=role, password=secret
        )
    )
    console.print(f"dashboard user {user.id}: {user.email} ({user.role})", highlight=False)


@keys_app.command("rotate-encryption")
def keys_rotate_encryption() -> None:
    """Re-encrypt every stored secret (connector account credentials, webhook signing
    secrets) under the first key of PAYGRID_ENCRYPTION_KEY. Put the new key first and keep
    the old ones after it, give every paygrid process that ring, then run this; afterwards
    the old keys can be dropped. Safe to run again."""
    keys = get_settings().key_ring()

    async def work(pool: asyncpg.Pool) -> list[tuple[str, int, int]]:
        accounts = await connector_accounts.rotate_encryption(pool, keys)
        endpoints = await webhook_endpoints.rotate_encryption(pool, keys)
        return [("connector accounts", *accounts), ("webhook endpoints", *endpoints)]

    try:
        counts = _with_pool(work)
    except DecryptionFailed:
        console.print(
            "[red]error:[/red] a stored secret is under a key that is not in "
            "PAYGRID_ENCRYPTION_KEY; add the old key after the new one and run again."
        )
        raise typer.Exit(1) from None
    table = Table("secrets", "re-encrypted", "already current")
    for name, rotated, current in counts:
        table.add_row(name, str(rotated), str(current))
    console.print(table)


@customers_app.command("erase")
def customers_erase(
    customer_id: Annotated[str, typer.Argument(help="Customer id (cus_...).")],
    merchant: Annotated[
        str | None,
        typer.Option(help="The customer's merchant (mer_...); a check, found from the id."),
    ] = None,
    actor: Annotated[
        str | None, typer.Option(help="Who asked, for the audit log. Default: cli:<user>.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Erase a customer's personal data (GDPR): email, name, phone and metadata; their
    payments' receipt email, description and metadata values; their payment methods'
    metadata; and every event snapshot that mentions them. Payments and refunds stay.
    Recorded in the audit log. Cannot be undone."""
    if not yes:
        typer.confirm(
            f"Erase the personal data of {customer_id}? This cannot be undone", abort=True
        )
    who = actor or f"cli:{getpass.getuser()}"

    async def work(pool: asyncpg.Pool) -> customer_service.Erasure:
        owner = merchant or await customers_db.merchant_of(pool, customer_id)
        if owner is None:
            raise ResourceMissing(f"No such customer: '{customer_id}'")
        return await customer_service.erase_customer(pool, owner, customer_id, who)

    erasure = _with_pool(work)
    console.print(
        f"erased {erasure.customer_id}: {erasure.payments} payments, "
        f"{erasure.payment_methods} payment methods, {erasure.events} events, "
        f"{erasure.idempotent_responses} saved responses redacted"
    )


def _when(value: object) -> str:
    return "" if value is None else value.isoformat(timespec="seconds")  # type: ignore[attr-defined]


@app.command()
def worker(
    queue: Annotated[
        list[str] | None,
        typer.Option(
            "--queue",
            metavar="NAME",
            help="A queue to work on (repeatable). Default: default, webhooks and broker.",
        ),
    ] = None,
) -> None:
    """Run background jobs until SIGTERM or Ctrl-C; in-flight jobs then finish or are
    released to other workers."""
    settings = get_settings()
    url, embedded = resolve_database(settings)
    try:
        engine.upgrade(url)
        asyncio.run(_work(url, settings, tuple(queue or QUEUES)))
    finally:
        _leave(embedded)


async def _work(url: str, settings: Settings, queues: tuple[str, ...]) -> None:
    from paygrid.app import build_deps  # loads FastAPI and the routers: only when needed

    logs.configure(settings.log_level)
    # One connection per in-flight job, one for LISTEN and one for claims and heartbeats;
    # two more for the event dispatcher (its LISTEN and its batches).
    # A worker commits asynchronously: everything it writes (dispatch marks, deliveries,
    # attempts, job states) is redone at least once if a crash loses it, and the events it
    # works from were committed durably by the API. Not waiting for each WAL flush roughly
    # halves the database time per delivery.
    # Its writes to payments and refunds are audited as the job's (``job:<kind>``).
    pool = await engine.create_pool(
        url, settings.worker_concurrency + 4, durable=False, audited=True
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    deps = build_deps(pool, settings)
    if settings.worker_metrics_port is not None:
        # A standalone worker serves its own numbers (deliveries, provider calls, breakers).
        prometheus_client.start_http_server(
            settings.worker_metrics_port, addr=settings.host, registry=deps.metrics.registry
        )
    runner = Background(deps, settings, queues)
    try:
        await runner.start()
        await stop.wait()
        await runner.stop()
    finally:
        await pool.close()


@audit_app.command("verify")
def audit_verify(
    merchant: Annotated[
        str | None, typer.Option(help="Only this merchant's chain (mer_...).")
    ] = None,
) -> None:
    """Check every merchant's audit hash chain; exits 1 naming the first broken link."""

    async def work(pool: asyncpg.Pool) -> list[audit_service.ChainReport]:
        return await audit_service.verify(pool, merchant)

    reports = _with_pool(work)
    table = Table("merchant", "sealed entries", "not sealed yet", "chain")
    broken = False
    for report in reports:
        if report.broken is None:
            verdict = "ok"
        else:
            broken = True
            verdict = (
                f"[red]broken at entry {report.broken.entry_id} (#{report.broken.seq}): "
                f"{report.broken.reason}[/red]"
            )
        table.add_row(report.merchant_id, str(report.sealed), str(report.unsealed), verdict)
    console.print(table)
    if broken:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
