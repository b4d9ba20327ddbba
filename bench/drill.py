"""The restore drill (issue 16 §5): take a backup, make payments through a fake provider,
restore the backup with ``paygrid restore``'s steps, and print how long each step took:
the RTO figure of docs/operations.md.

A scratch database on ``--database-url``'s server is migrated; one merchant gets a Paystack
account on the Paystack fake (tests/fakes/paystack, in a thread) and a saved card; with
``--payments N`` the database is first given N payments of history (with their attempts,
events and refunds, loaded with ``COPY`` by bench/scale_data.py, as bench/scale.py loads
them), so that ``--payments 1000000`` times the restore of a database of a million
payments. Then: a backup (``services/backups``), ``--after`` payments (default 50) made
through the API (the app in process, as ``paygrid serve`` runs it, fence watch included),
and the restore (fence, empty, pg_restore, migrate, re-sync, reopen). Afterwards the
script retries every post-backup Idempotency-Key and counts the fake's charges. Nothing is
asserted: it prints numbers, then drops the scratch database.

    .venv/bin/python bench/drill.py [--payments 0] [--after 50] [--jobs 1]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the Paystack fake lives in tests/fakes

from scale_data import Loader  # noqa: E402
from tests.fakes.paystack import FakeMerchant, FakeServer, PaystackFake  # noqa: E402

from paygrid.app import create_app  # noqa: E402 - after the path is set
from paygrid.clock import SYSTEM_CLOCK  # noqa: E402
from paygrid.config import Settings  # noqa: E402
from paygrid.db import engine  # noqa: E402
from paygrid.restore_cli import deps_opener  # noqa: E402
from paygrid.services.backups.create import create_backup  # noqa: E402
from paygrid.services.merchants import create_merchant  # noqa: E402
from paygrid.services.restore import restoring  # noqa: E402
from paygrid.services.restore.restoring import RestoreOptions, RestoreReport  # noqa: E402

DEFAULT_SERVER = os.environ.get(
    "PAYGRID_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BASE_URL = "http://drill.test"
PAYING_CARD = "4084084084084081"
UNLIMITED = "1000000/second"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", type=int, default=0, help="history before the backup")
    parser.add_argument("--after", type=int, default=50, help="payments after the backup")
    parser.add_argument("--jobs", type=int, default=1, help="pg_restore --jobs")
    parser.add_argument("--database-url", default=DEFAULT_SERVER, help="server to use")
    return parser.parse_args(argv)


def with_database(url: str, name: str) -> str:
    head, _, tail = url.rpartition("/")
    query = "?" + tail.split("?", 1)[1] if "?" in tail else ""
    return f"{head}/{name}{query}"


@asynccontextmanager
async def scratch(server: str) -> AsyncIterator[str]:
    name = f"paygrid_drill_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield with_database(server, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def settings() -> Settings:
    return Settings(
        public_url=BASE_URL,
        log_level="WARNING",
        rate_limit_per_key=UNLIMITED,
        rate_limit_per_ip=UNLIMITED,
        rate_limit_payments_per_customer=UNLIMITED,
        worker_in_process=False,
    )


class Drill:
    """The app, one merchant's secret key and the Paystack fake's merchant."""

    def __init__(self, http: httpx.AsyncClient, key: str, fake: PaystackFake) -> None:
        self.http = http
        self.headers = {"Authorization": f"Bearer {key}"}
        self.fake = fake

    async def post(self, path: str, body: dict[str, Any], **headers: str) -> httpx.Response:
        return await self.http.post(path, json=body, headers={**self.headers, **headers})

    async def saved_card(self, merchant: FakeMerchant) -> tuple[str, str]:
        account = await self.post(
            "/v1/connector_accounts",
            {
                "provider": "paystack",
                "credentials": {"secret_key": merchant.secret_key},
                "currencies": ["NGN"],
                "api_base": self.fake.base_url,
            },
        )
        account.raise_for_status()
        customer = (await self.post("/v1/customers", {"email": "ada@example.com"})).json()["id"]
        started = await self.post(
            "/v1/payments",
            {
                "amount": 500_000,
                "currency": "NGN",
                "confirm": True,
                "customer": customer,
                "setup_future_usage": "off_session",
                "payment_method_types": ["card"],
                "return_url": "https://shop.test/done",
            },
        )
        url = started.json()["next_action"]["redirect_to_url"]["url"]
        paid = await merchant.pay(url, card_number=PAYING_CARD)
        await self.http.get(paid.headers["location"])
        payment = await self.http.get(f"/v1/payments/{started.json()['id']}", headers=self.headers)
        return customer, str(payment.json()["payment_method"])


def charge(customer: str, method: str, n: int) -> dict[str, Any]:
    return {
        "amount": 10_000 + n,
        "currency": "NGN",
        "confirm": True,
        "off_session": True,
        "customer": customer,
        "payment_method": method,
    }


async def charges_at(merchant: FakeMerchant) -> int:
    return int((await merchant.api("GET", "/transaction?perPage=1")).json()["meta"]["total"])


async def load_history(url: str, merchant_id: str, payments: int) -> float:
    started = time.perf_counter()
    conn = await asyncpg.connect(url)
    try:
        await Loader(demo_merchant=merchant_id).load_to(conn, url, payments)
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return time.perf_counter() - started


async def drill(config: argparse.Namespace, fake: PaystackFake) -> None:
    async with scratch(config.database_url) as url:
        await asyncio.to_thread(engine.upgrade, url)
        pool = await engine.create_pool(url, 2)
        try:
            merchant = await create_merchant(pool, "Drill merchant")
        finally:
            await pool.close()
        app = create_app(settings(), database_url=url)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
                await run(
                    config, url, merchant.id, Drill(http, merchant.key("secret", False), fake)
                )


async def run(config: argparse.Namespace, url: str, merchant_id: str, drill: Drill) -> None:
    provider = await drill.fake.new_merchant()
    customer, method = await drill.saved_card(provider)
    if config.payments:
        print(f"loading {config.payments:,} payments of history", flush=True)
        print(f"  loaded in {await load_history(url, merchant_id, config.payments):.1f} s")
    directory = Path(tempfile.mkdtemp(prefix="paygrid-drill-"))
    # No command timeout: the backup's counts and checksums read every row of a big table.
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    try:
        started = time.perf_counter()
        backup = await create_backup(pool, url, directory)
        backup_seconds = time.perf_counter() - started
    finally:
        await pool.close()
    keys = [f"drill-{uuid.uuid4().hex}" for _ in range(config.after)]
    started = time.perf_counter()
    made = [
        (
            await drill.post("/v1/payments", charge(customer, method, n), **{"Idempotency-Key": k})
        ).json()["id"]
        for n, k in enumerate(keys)
    ]
    paying_seconds = time.perf_counter() - started
    charged = await charges_at(provider)
    report = await restoring.restore(
        url,
        backup.path,
        deps_opener(url, settings()),
        SYSTEM_CLOCK,
        RestoreOptions(jobs=config.jobs),
    )
    await asyncio.sleep(0.2)  # the app hears the fence lowered and reopens
    same = 0
    for n, key in enumerate(keys):
        again = await drill.post(
            "/v1/payments", charge(customer, method, n), **{"Idempotency-Key": key}
        )
        same += again.status_code == 200 and again.json()["id"] == made[n]
    print_report(config, backup.path, backup_seconds, paying_seconds, report)
    print(f"retried Idempotency-Keys answering the same payment: {same}/{len(keys)}")
    print(f"new charges at the provider from the retries: {await charges_at(provider) - charged}")
    await asyncio.to_thread(shutil.rmtree, directory)


def print_report(
    config: argparse.Namespace,
    archive: Path,
    backup_seconds: float,
    paying_seconds: float,
    report: RestoreReport,
) -> None:
    manifest = report.manifest
    payments = next((t.rows for t in manifest.tables if t.name == "public.payments"), 0)
    print(f"backup: {payments:,} payments, {manifest.total_rows:,} rows,"
          f" {archive.stat().st_size / 1e6:,.1f} MB, {backup_seconds:.1f} s")  # fmt: skip
    print(f"{config.after} payments after the backup in {paying_seconds:.1f} s")
    print(f"restore (pg_restore --jobs {config.jobs}):")
    for step, seconds in report.timings.items():
        print(f"  {step:<8} {seconds:8.2f} s")
    print(f"  {'total':<8} {report.total_seconds:8.2f} s   <- the RTO of this drill")
    for found in report.accounts:
        print(f"re-sync {found.provider} {found.account_id}: listed {found.listed},"
              f" re-imported {found.imported}, known {found.already_known},"
              f" error {found.error}")  # fmt: skip


async def main_async(config: argparse.Namespace) -> None:
    server = FakeServer()
    server.start()
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            await drill(config, PaystackFake(server.base_url, http))
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    asyncio.run(main_async(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
