"""The ``paygrid`` command line."""

from __future__ import annotations

import asyncio
import getpass
import importlib.metadata
import json
import os
import signal
import warnings
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Annotated, Literal, TypeVar

import asyncpg
import platformdirs
import prometheus_client
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from paygrid import backup_cli, logs, reconcile_cli, restore_cli
from paygrid.api.security import warn_if_plaintext
from paygrid.bootstrap import QUEUES, Background, build_deps, open_read_pool
from paygrid.clock import SYSTEM_CLOCK
from paygrid.config import Settings, get_settings
from paygrid.crypto import DecryptionFailed
from paygrid.db import audit as audit_db
from paygrid.db import customers as customers_db
from paygrid.db import engine
from paygrid.db import merchants as merchants_db
from paygrid.db.embedded import EmbeddedPostgres, Supervisor
from paygrid.db.fence import ProcessRole
from paygrid.db.listener import Notifications
from paygrid.db.merchants import ApiKeyRow
from paygrid.db.runtime import resolve_database
from paygrid.demo import DEMO_USER_EMAIL, DemoMerchant, ensure_demo_merchant, ensure_demo_user
from paygrid.domain.errors import PaygridError, ResourceMissing
from paygrid.services import audit as audit_service
from paygrid.services import (
    connector_accounts,
    dashboard_users,
    idempotency_keys,
    queue_admin,
    webhook_endpoints,
)
from paygrid.services import customers as customer_service
from paygrid.services import merchants as merchant_service
from paygrid.services.restore.fence import FenceWatch, WriteFence

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
app.command("restore")(restore_cli.restore)
# Never wrapped: keys and ids are copied from the output, whatever the terminal's width.
console = Console(soft_wrap=True, highlight=False)
errors = Console(stderr=True, soft_wrap=True, highlight=False)
T = TypeVar("T")
LEGACY_DATA_DIR = Path(".paygrid")  # the default before it became per-user


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"paygrid {importlib.metadata.version('paygrid')}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """paygrid: a self-hosted payment gateway."""
    # pgserver asks platformdirs for a runtime directory, which warns when XDG_RUNTIME_DIR is
    # unset (containers, ssh sessions) and then uses a fine fallback: not worth a warning.
    warnings.filterwarnings("ignore", category=platformdirs.RuntimeDirWarning)


def _database(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    """The database every command uses; says so on stderr when it is about to create one."""
    if settings.database_url is None:
        data_dir = settings.data_dir.resolve()
        if not (data_dir / "pg" / "PG_VERSION").exists():
            errors.print(f"No database in {escape(str(data_dir))} yet: creating a new one there.")
            errors.print("(Set PAYGRID_DATA_DIR or PAYGRID_DATABASE_URL to use another.)")
            legacy = LEGACY_DATA_DIR.resolve()
            if legacy != data_dir and (legacy / "pg" / "PG_VERSION").exists():
                errors.print(
                    f"An older data directory is at {escape(str(legacy))}; to keep using it,"
                )
                errors.print(f"set PAYGRID_DATA_DIR={escape(str(legacy))}")
    return resolve_database(settings)


def _fail(message: str) -> typer.Exit:
    errors.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(1)


def _print_rows(
    headers: Sequence[str], rows: Sequence[Sequence[str]], as_json: bool, empty: str
) -> None:
    """A list as JSON (an array of objects keyed by ``headers``) or as a table that is as
    wide as its content needs, so ids are never cut or wrapped on a narrow terminal."""
    if as_json:
        typer.echo(json.dumps([dict(zip(headers, row, strict=True)) for row in rows], indent=2))
        return
    if not rows:
        errors.print(empty)
        return
    table = Table(*headers, box=None, pad_edge=False)
    for row in rows:
        table.add_row(*row)
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    needed = sum(widths) + 2 * len(widths)
    Console(width=max(needed, console.width), highlight=False, soft_wrap=True).print(table)


def _with_pool(work: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
    """Run ``work`` against the configured database (starting the embedded one if needed),
    with the schema migrated."""
    return _with_database(lambda pool, _url: work(pool))


def _with_database(work: Callable[[asyncpg.Pool, str], Awaitable[T]]) -> T:
    """``_with_pool``, also handing ``work`` the database's direct URL (past any pooler)."""
    settings = get_settings()
    url, embedded = _database(settings)
    try:
        engine.upgrade(engine.direct_url(url))  # never through a pooler

        async def main() -> T:
            audit_db.act_as(f"cli:{getpass.getuser()}")  # what the command changes is its own
            # Past any pooler when a direct URL is set: a backup holds one snapshot
            # transaction for its whole read, which a transaction pooler would pin anyway.
            direct = engine.direct_url(url)
            pool = await engine.create_pool(direct, 2, pooler=False if direct != url else None)
            try:
                return await work(pool, direct)
            finally:
                await pool.close()

        return asyncio.run(main())
    except PaygridError as error:
        raise _fail(error.message) from None
    finally:
        _leave(embedded)


app.add_typer(backup_cli.make_app(_with_database), name="backup")


def _leave(embedded: EmbeddedPostgres | None) -> None:
    """Release this process's handle on the embedded server. pgserver counts handles, so the
    server keeps running while another process (such as ``make run``) still uses it."""
    if embedded is not None:
        embedded.release()


@app.command()
def migrate() -> None:
    """Apply database migrations up to the newest."""
    settings = get_settings()
    url, embedded = _database(settings)
    try:
        engine.upgrade(engine.direct_url(url))  # never through a pooler
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
    url, embedded = _database(settings)
    supervisor: Supervisor | None = None
    try:
        engine.upgrade(engine.direct_url(url))  # never through a pooler
        base = settings.base_url()
        lines = [
            ("paygrid", base),
            ("API docs", f"{base}/docs"),
            ("dashboard", f"{base}/dashboard"),
        ]
        if demo:
            merchant = asyncio.run(_demo(url, settings.data_dir))
            password = asyncio.run(_demo_user(url, settings.data_dir, merchant.id))
            lines += [
                ("demo store", f"{base}/demo/store"),
                ("dashboard login", f"{DEMO_USER_EMAIL} / {password}"),
                ("demo merchant", merchant.id),
                ("secret key", merchant.secret_key),
                ("publishable key", merchant.publishable_key),
            ]
            os.environ["PAYGRID_DEMO_STORE"] = "true"  # the app factory serves /demo/store
            # A local demo receiver (e.g. http://localhost:4242/webhooks) passes the SSRF
            # guard; an explicit PAYGRID_WEBHOOK_ALLOWED_HOSTS (even empty) wins.
            os.environ.setdefault("PAYGRID_WEBHOOK_ALLOWED_HOSTS", DEMO_WEBHOOK_HOSTS)
        logs.configure(settings.log_level)
        warn_if_plaintext(settings, live_mode=asyncio.run(_live_mode_in_use(url)))
        _print_addresses(lines, settings.data_dir if embedded is not None else None)
        os.environ["PAYGRID_DATABASE_URL"] = url  # the app factory (and each worker) reads it
        # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal; exit normally
        # instead, so the embedded server below is released rather than left running.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        if embedded is not None:
            # Start the embedded server again if it dies (kill -9, the OOM killer); the app's
            # pools and its worker reconnect by themselves, so paygrid needs no restart.
            supervisor = embedded.supervise()
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
        if supervisor is not None:
            supervisor.stop()  # first, or it would start the server being released
        _leave(embedded)
        if embedded is not None:
            console.print(
                "embedded PostgreSQL released (stopped unless another paygrid process uses it)"
            )


def _print_addresses(lines: list[tuple[str, str]], data_dir: Path | None) -> None:
    """One short ``label: value`` line each, never wrapped (the keys are copied from here)."""
    if data_dir is not None:
        lines.append(("data directory", str(data_dir.resolve())))
    width = max(len(label) for label, _ in lines) + 2
    for label, value in lines:
        typer.echo(f"{label + ':':<{width}}{value}")
    typer.echo("Press Ctrl-C to stop.")


DEMO_WEBHOOK_HOSTS = "localhost,127.0.0.1,[::1]"


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
def merchants_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List merchants."""
    rows = _with_pool(merchants_db.list_merchants)
    _print_rows(
        ("id", "name", "created"),
        [(row.id, row.name, _when(row.created_at)) for row in rows],
        as_json,
        "No merchants yet: create one with `paygrid merchants create --name NAME`.",
    )


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

    async def work(pool: asyncpg.Pool) -> tuple[ApiKeyRow, str]:
        if await merchants_db.get_merchant(pool, merchant) is None:
            raise ResourceMissing(f"No such merchant: '{merchant}'")
        return await merchant_service.create_key(
            pool, merchant, mode == "live", kind=kind, name=name, role=role, scopes=scope
        )

    row, secret = _with_pool(work)
    console.print(f"{row.id}: {secret}", highlight=False)


@keys_app.command("list")
def keys_list(
    merchant: Annotated[str, typer.Option(help="Merchant id (mer_...).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List a merchant's keys (never the secrets)."""

    async def work(pool: asyncpg.Pool) -> list[ApiKeyRow]:
        if await merchants_db.get_merchant(pool, merchant) is None:
            raise ResourceMissing(f"No such merchant: '{merchant}'")
        return await merchants_db.list_keys(pool, merchant)

    rows = _with_pool(work)
    _print_rows(
        ("id", "kind", "mode", "ends_with", "name", "last_used", "revoked"),
        [
            (
                row.id,
                row.kind,
                "live" if row.livemode else "test",
                row.last4,
                row.name or "",
                _when(row.last_used_at),
                _when(row.revoked_at),
            )
            for row in rows
        ],
        as_json,
        f"{merchant} has no keys.",
    )


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="Key id (key_...).")]) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    row = _with_pool(lambda pool: merchant_service.revoke_key(pool, key_id))
    console.print(f"revoked {row.id}")


PasswordOption = Annotated[
    str | None,
    typer.Option(help="Prompted for (not echoed) when left out; avoid it in shell history."),
]


def _password(given: str | None, prompt: str) -> str:
    """The password given as an option, or asked for twice without echo."""
    if given is not None:
        return given
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=True))


@users_app.command("create")
def users_create(
    merchant: Annotated[str, typer.Option(help="Merchant id (mer_...).")],
    email: Annotated[str, typer.Option(help="The address the user signs in with.")],
    role: Annotated[str, typer.Option(help="admin, operator, support or viewer.")],
    password: PasswordOption = None,
) -> None:
    """Create a dashboard user who signs in at /dashboard with this email and password."""
    secret = _password(password, "Password")
    user = _with_pool(
        lambda pool: dashboard_users.create_user(
            pool, merchant_id=merchant, email=email, role=role, password=secret
        )
    )
    console.print(f"dashboard user {user.id}: {user.email} ({user.role})", highlight=False)


@users_app.command("list")
def users_list(
    merchant: Annotated[str | None, typer.Option(help="Only this merchant's (mer_...).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List dashboard users (never their passwords)."""
    rows = _with_pool(lambda pool: dashboard_users.list_users(pool, merchant))
    _print_rows(
        ("id", "merchant", "email", "role", "created", "last_login", "disabled"),
        [
            (
                user.id,
                user.merchant_id,
                user.email,
                user.role,
                _when(user.created_at),
                _when(user.last_login_at),
                _when(user.disabled_at),
            )
            for user in rows
        ],
        as_json,
        "No dashboard users: create one with `paygrid users create`.",
    )


@users_app.command("set-password")
def users_set_password(
    email: Annotated[str, typer.Argument(help="The user's email.")],
    password: PasswordOption = None,
) -> None:
    """Set a dashboard user's password; the user's open dashboard sessions end."""
    secret = _password(password, "New password")
    user = _with_pool(lambda pool: dashboard_users.reset_password(pool, email, secret))
    console.print(f"password set for {user.email} ({user.id})", highlight=False, soft_wrap=True)


@keys_app.command("rotate-encryption")
def keys_rotate_encryption() -> None:
    """Re-encrypt every stored secret (connector account credentials, webhook signing
    secrets, idempotent responses that carry a secret) under the first key of PAYGRID_ENCRYPTION_KEY. Put the new key first and keep
    the old ones after it, give every paygrid process that ring, then run this; afterwards
    the old keys can be dropped. Safe to run again."""
    keys = get_settings().key_ring()

    async def work(pool: asyncpg.Pool) -> list[tuple[str, int, int]]:
        accounts = await connector_accounts.rotate_encryption(pool, keys)
        endpoints = await webhook_endpoints.rotate_encryption(pool, keys)
        replays = await idempotency_keys.rotate_encryption(pool, keys)
        return [
            ("connector accounts", *accounts),
            ("webhook endpoints", *endpoints),
            ("idempotent responses", *replays),
        ]

    try:
        counts = _with_pool(work)
    except DecryptionFailed:
        raise _fail(
            "a stored secret is under a key that is not in PAYGRID_ENCRYPTION_KEY; add the old "
            "key after the new one and run again."
        ) from None
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
        return await customer_service.erase_customer(
            pool, owner, customer_id, who, now=SYSTEM_CLOCK.now()
        )

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
            help="A queue to work on (repeatable). Default: default, webhooks, broker and billing.",
        ),
    ] = None,
) -> None:
    """Run background jobs until SIGTERM or Ctrl-C; in-flight jobs then finish or are
    released to other workers."""
    settings = get_settings()
    url, embedded = _database(settings)
    try:
        engine.upgrade(engine.direct_url(url))  # never through a pooler
        asyncio.run(_work(url, settings, tuple(queue or QUEUES)))
    finally:
        _leave(embedded)


async def _work(url: str, settings: Settings, queues: tuple[str, ...]) -> None:
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
    read_pool = await open_read_pool(settings)  # report runs read from the replica
    deps = build_deps(pool, settings, read_pool=read_pool)
    if settings.worker_metrics_port is not None:
        # A standalone worker serves its own numbers (deliveries, provider calls, breakers).
        prometheus_client.start_http_server(
            settings.worker_metrics_port, addr=settings.host, registry=deps.metrics.registry
        )
    # LISTEN past any pooler (PAYGRID_DATABASE_DIRECT_URL); unset: a connection of ``pool``.
    listen_pool = await engine.create_listen_pool(url)
    notifications = Notifications(listen_pool or pool, owner="worker")
    runner = Background(deps, settings, queues, notifications=notifications)
    # The restore's write fence holds the worker's claims (services/restore/fence.py); it is
    # read before the worker starts, so a worker started during a restore claims nothing.
    fence = WriteFence()
    fence.on_change(runner.hold)
    fence.count(runner.jobs_in_flight)  # a restore waits for these to finish
    fence_watch = FenceWatch(fence, deps, ProcessRole.WORKER)
    try:
        await notifications.start()
        await fence_watch.start(notifications)
        await runner.start()
        await stop.wait()
        await runner.stop()
        await fence_watch.stop()  # after the jobs: a restore waits for those
    finally:
        await notifications.stop()
        if listen_pool is not None:
            await listen_pool.close()
        await pool.close()
        if read_pool is not None:
            await read_pool.close()


@app.command()
def queues(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Operator view of the whole platform: every queue's jobs by state, the oldest due
    job's age, and the live workers with their hosts and pids. (A merchant's admin key sees
    only its own jobs, at GET /v1/admin/queues.)"""
    overview = _with_pool(lambda pool: queue_admin.platform_queue_stats(pool, SYSTEM_CLOCK.now()))
    if as_json:
        typer.echo(json.dumps(overview, indent=2))
        return
    _print_rows(
        ("queue", "counts", "oldest due (s)"),
        [
            (
                q["name"],
                " ".join(f"{status}={n}" for status, n in sorted(q["counts"].items())),
                "" if q["oldest_due_seconds"] is None else f"{q['oldest_due_seconds']:.1f}",
            )
            for q in overview["queues"]
        ],
        False,
        "no jobs",
    )
    _print_rows(
        ("worker", "host", "pid", "queues", "heartbeat"),
        [
            (w["id"], w["hostname"], str(w["pid"]), ",".join(w["queues"]), str(w["heartbeat"]))
            for w in overview["workers"]
        ],
        False,
        "no live workers",
    )


@audit_app.command("verify")
def audit_verify(
    merchant: Annotated[
        str | None, typer.Option(help="Only this merchant's chain (mer_...).")
    ] = None,
) -> None:
    """Check every merchant's audit hash chain; exits 1 naming the first broken link."""

    async def work(pool: asyncpg.Pool) -> list[audit_service.ChainReport]:
        if merchant is not None and await merchants_db.get_merchant(pool, merchant) is None:
            raise ResourceMissing(f"No such merchant: '{merchant}'")
        return await audit_service.verify(pool, merchant)

    reports = _with_pool(work)
    rows = [
        (
            report.merchant_id,
            str(report.sealed),
            str(report.unsealed),
            "ok"
            if report.broken is None
            else f"[red]broken at entry {report.broken.entry_id} (#{report.broken.seq}): "
            f"{escape(report.broken.reason)}[/red]",
        )
        for report in reports
    ]
    _print_rows(
        ("merchant", "sealed entries", "not sealed yet", "chain"), rows, False, "No merchants."
    )
    if any(report.broken is not None for report in reports):
        raise typer.Exit(1)


@app.command()
def reconcile(
    account: reconcile_cli.AccountOption,
    from_: reconcile_cli.FromOption,
    to: reconcile_cli.ToOption,
    heal: reconcile_cli.HealOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run as JSON.")] = False,
) -> None:
    """Run one reconciliation run of a connector account now, with a progress bar, and print
    what it found (docs/reconciliation.md)."""
    window = (reconcile_cli.moment(from_), reconcile_cli.moment(to))
    run = _with_pool(lambda pool: reconcile_cli.reconcile_account(pool, account, window, heal))
    if as_json:
        typer.echo(run.model_dump_json(indent=2))
        return
    rows = [(kind, str(count)) for kind, count in run.counts.items()]
    _print_rows(("discrepancy", "new"), rows, False, "")
    typer.echo(
        f"{run.id}: {run.status}, {run.objects_compared:,} objects compared, "
        f"{run.already_known} known before, {run.healed} healed"
    )
    if run.status != "completed":
        raise _fail(run.failure_message or "the run failed")


if __name__ == "__main__":
    app()
