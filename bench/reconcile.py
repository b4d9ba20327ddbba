"""Reconcile 100,000 provider transactions against paygrid's (issue 15 §4): the comparison
core of a run (``services/reconciliation/comparing.compare_window``: the bulk reads of the
account's window and the pure matcher), timed, in transactions per second.

A scratch database on ``--database-url``'s server is migrated, one merchant with a Paystack
account is given ``--size`` payments with their authorize attempts (``COPY``, as
``bench/scale_data.py`` loads), plus a second merchant's equal share that the run must not
read, and the provider's side is generated to match them, with a sprinkling of each
discrepancy (one in a thousand of each) so the matcher does real work. Nothing is asserted;
the script prints the rate and the discrepancies it found, and drops the scratch database.

    .venv/bin/python bench/reconcile.py [--size 100000] [--repeat 3]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from paygrid.db import engine
from paygrid.db.connector_accounts import ConnectorAccountRow
from paygrid.domain.connector_accounts import ConnectorAccountStatus
from paygrid.domain.reconciliation import ChargeState, ProviderCharge, ProviderRefund
from paygrid.ids import new_id
from paygrid.services.reconciliation.comparing import compare_window

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
START = datetime(2026, 11, 1, tzinfo=UTC)
WINDOW = (START, START + timedelta(days=1))
PAYMENT_COLUMNS = ["id", "merchant_id", "livemode", "status", "amount", "currency",
                   "capture_method", "amount_received", "connector", "connector_account_id",
                   "reference", "created_at", "updated_at", "fee", "net"]  # fmt: skip
ATTEMPT_COLUMNS = ["id", "payment_id", "operation", "connector", "connector_account_id",
                   "status", "amount", "provider_reference", "created_at", "completed_at"]  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=100_000, help="provider transactions")
    parser.add_argument("--repeat", type=int, default=3, help="timed comparisons (best kept)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("PAYGRID_TEST_DATABASE_URL", DEFAULT_SERVER),
        help="a PostgreSQL server where a scratch database is made",
    )
    return parser.parse_args(argv)


async def merchant_with_account(conn: asyncpg.Connection) -> ConnectorAccountRow:
    merchant_id, account_id = new_id("mer"), new_id("ca")
    now = datetime.now(UTC)
    await conn.execute(
        "INSERT INTO merchants (id, name, created_at) VALUES ($1, 'bench', $2)", merchant_id, now
    )
    await conn.execute(
        "INSERT INTO connector_accounts (id, merchant_id, livemode, provider, currencies,"
        " credentials, secret_key_last4) VALUES ($1, $2, false, 'paystack', '{NGN}', '\\x00',"
        " 'abcd')",
        account_id,
        merchant_id,
    )
    return ConnectorAccountRow(
        id=account_id,
        merchant_id=merchant_id,
        livemode=False,
        provider="paystack",
        name=None,
        currencies=["NGN"],
        api_base=None,
        credentials=b"\x00",
        secret_key_last4="abcd",  # noqa: S106 - a bench account never calls Paystack
        webhook_secret_last4=None,
        status=ConnectorAccountStatus.ENABLED,
        metadata={},
        created_at=now,
        updated_at=now,
    )


def generate(
    account: ConnectorAccountRow, size: int, rng: random.Random
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[ProviderCharge]]:
    """Payments, attempts and the provider's charges for them, spread over the window."""
    payments, attempts, charges = [], [], []
    span = (WINDOW[1] - WINDOW[0]).total_seconds()
    for n in range(size):
        created = WINDOW[0] + timedelta(seconds=span * n / size)
        amount = rng.randrange(1_000, 5_000_000)
        fee = amount * 15 // 1000
        payment_id, attempt_id = new_id("pay"), new_id("pa")
        payments.append((payment_id, account.merchant_id, False, "succeeded", amount, "NGN",
                         "automatic", amount, "paystack", account.id, payment_id, created,
                         created, fee, amount - fee))  # fmt: skip
        attempts.append((attempt_id, payment_id, "authorize", "paystack", account.id,
                         "captured", amount, attempt_id, created, created))  # fmt: skip
        drift = n % 1000
        charges.append(
            ProviderCharge(
                reference=attempt_id if drift != 1 else f"unknown_{n}",
                state=ChargeState.SUCCEEDED if drift != 2 else ChargeState.FAILED,
                amount=amount + (1 if drift == 3 else 0),
                currency="NGN",
                fee=fee + (5 if drift == 4 else 0),
                created=int(created.timestamp()),
            )
        )
    return payments, attempts, charges


async def load(url: str, size: int) -> tuple[ConnectorAccountRow, list[ProviderCharge]]:
    conn = await asyncpg.connect(url)
    try:
        rng = random.Random(15)  # noqa: S311 - data, not secrets
        mine, theirs = await merchant_with_account(conn), await merchant_with_account(conn)
        charges: list[ProviderCharge] = []
        for account in (mine, theirs):
            payments, attempts, generated = generate(account, size, rng)
            await conn.copy_records_to_table("payments", records=payments, columns=PAYMENT_COLUMNS)
            await conn.copy_records_to_table(
                "payment_attempts", records=attempts, columns=ATTEMPT_COLUMNS
            )
            if account is mine:
                charges = generated
        await conn.execute("ANALYZE payments; ANALYZE payment_attempts; ANALYZE refunds")
        return mine, charges
    finally:
        await conn.close()


async def measure(url: str, size: int, repeat: int) -> None:
    started = time.monotonic()
    account, charges = await load(url, size)
    print(f"loaded {2 * size:,} payments (two merchants) in {time.monotonic() - started:.1f} s")
    refunds: list[ProviderRefund] = []
    pool = await engine.create_pool(url, 2)
    try:
        best = float("inf")
        for _ in range(repeat):
            began = time.perf_counter()
            found = await compare_window(pool, account, WINDOW, charges, refunds)
            best = min(best, time.perf_counter() - began)
        kinds = Counter(f.type.value for f in found.findings)
        print(f"compared {found.compared:,} objects; found {dict(sorted(kinds.items()))},")
        print(f"  and {len(found.unlisted):,} payments the provider's list lacks (to confirm)")
        print(f"best of {repeat}: {best:.3f} s = {size / best:,.0f} provider transactions/s")
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    name = f"paygrid_bench_reconcile_{uuid.uuid4().hex[:8]}"
    server = config.database_url
    base, _, _ = server.rpartition("/")

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        url = f"{base}/{name}"
        engine.upgrade(url)
        asyncio.run(measure(url, config.size, config.repeat))
    finally:
        asyncio.run(admin(f'DROP DATABASE "{name}" WITH (FORCE)'))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
