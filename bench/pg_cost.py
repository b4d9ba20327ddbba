"""PostgreSQL CPU per confirmed payment, read from the backends themselves.

Creates a scratch database on a PostgreSQL server on this machine (``--server``, an admin
URL; default ``PAYGRID_TEST_DATABASE_URL``), migrates it to ``--revision`` (default head),
runs the app in-process (no HTTP server, no worker: only the request path) on small pools
with the key and routing caches listening, as ``paygrid serve`` does, creates a merchant
and sends ``--payments`` ``POST /v1/payments`` from ``--clients`` concurrent clients:
``confirm: true``, card data for the success card and a fresh ``Idempotency-Key``, as
``bench/payments.lua`` does. It reads the CPU time of every backend connected to the
scratch database (the pools' connections and the LISTEN connection) before and after the
timed payments, from ``/proc/<pid>/schedstat`` (nanoseconds; clock ticks from
``/proc/<pid>/stat`` where that is missing), and prints the CPU per payment of PostgreSQL
and of this process. Wall time is printed too but means little on a busy machine.

``--rounds`` repeats the timed run on the same database (after one warm-up), so noise
shows; for a comparison, alternate whole runs of the two trees (``PYTHONPATH`` at each
tree's ``src``). With ``--statements N`` (a server with ``pg_stat_statements`` loaded,
``track = all``), it also prints the N statements of the last round with the most
execution time per payment. ``--sql FILE`` runs a script on the scratch database after
migrating (to try a schema change); ``--keep`` keeps the database.

Usage::

    .venv/bin/python bench/pg_cost.py [--payments 2000] [--clients 4] [--rounds 3]
        [--warmup 200] [--revision head] [--statements 0] [--keep] [--sql FILE]
        [--server postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

from paygrid.app import create_app
from paygrid.bootstrap import build_deps
from paygrid.config import Settings
from paygrid.db import engine
from paygrid.db.listener import Notifications
from paygrid.services import lookup_invalidation
from paygrid.services.merchants import create_merchant

BASE_URL = "http://testserver"
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2040, "cvc": "123"}
PAYMENT = {
    "amount": 2000,
    "currency": "USD",
    "confirm": True,
    "payment_method_data": {"type": "card", "card": CARD},
}


def database_url(server: str, name: str) -> str:
    head, _, tail = server.rpartition("/")
    query = "?" + tail.split("?", 1)[1] if "?" in tail else ""
    return f"{head}/{name}{query}"


async def admin(server: str, sql: str) -> None:
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@asynccontextmanager
async def scratch_database(
    server: str, revision: str, keep: bool, sql: str | None
) -> AsyncIterator[str]:
    name = f"pg_cost_{uuid.uuid4().hex[:10]}"
    await admin(server, f'CREATE DATABASE "{name}"')
    url = database_url(server, name)
    try:
        await asyncio.to_thread(engine.upgrade, url, revision)
        if sql:
            await admin(url, sql)
        yield url
    finally:
        if keep:
            print(f"kept database {name}")
        else:
            await admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def backend_cpu(conn: asyncpg.Connection, seen: dict[int, float]) -> float:
    """Total CPU seconds of the database's backends; ``seen`` keeps the last reading of each
    backend, so one that exits between readings still counts what it used."""
    pids = await conn.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid()"
    )
    for record in pids:
        try:
            seen[record["pid"]] = process_cpu(record["pid"])
        except (psutil.NoSuchProcess, FileNotFoundError, ProcessLookupError):
            continue
    return sum(seen.values())


def process_cpu(pid: int) -> float:
    """CPU seconds of a process: from ``/proc/<pid>/schedstat`` (nanoseconds) where the
    kernel has it, else user + system time (clock ticks, 10 ms)."""
    try:
        with open(f"/proc/{pid}/schedstat") as schedstat:
            return int(schedstat.read().split()[0]) / 1e9
    except (FileNotFoundError, PermissionError, IndexError, ValueError):
        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)


async def pay(http: httpx.AsyncClient, headers: dict[str, str], count: int, clients: int) -> None:
    """``count`` payments from ``clients`` concurrent clients."""
    await asyncio.gather(*(_pay(http, headers, count // clients) for _ in range(clients)))


async def _pay(http: httpx.AsyncClient, headers: dict[str, str], count: int) -> None:
    for _ in range(count):
        response = await http.post(
            "/v1/payments", json=PAYMENT, headers={**headers, "Idempotency-Key": uuid.uuid4().hex}
        )
        if response.status_code != 200 or response.json()["status"] != "succeeded":
            raise SystemExit(f"payment failed: {response.status_code} {response.text}")


async def run(args: argparse.Namespace) -> None:
    settings = Settings(
        public_url=BASE_URL,
        log_level="WARNING",
        rate_limit_per_key="1000000/second",
        rate_limit_per_ip="1000000/second",
        rate_limit_payments_per_customer="1000000/second",
    )
    async with scratch_database(
        args.server, args.revision, args.keep, args.sql.read_text() if args.sql else None
    ) as url:
        main = await engine.create_pool(url, args.pool)
        bookkeeping = await engine.create_pool(url, args.pool, durable=False)
        deps = build_deps(main, settings, bookkeeping_pool=bookkeeping)
        notifications = Notifications(main)
        await notifications.start()
        listener = await lookup_invalidation.listen(deps.lookups, notifications)
        probe = await asyncpg.connect(url)
        app = create_app(settings, deps=deps)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        try:
            merchant = await create_merchant(main, "pg_cost")
            headers = {"Authorization": f"Bearer {merchant.key('secret', livemode=False)}"}
            async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
                await pay(http, headers, args.warmup, args.clients)
                results = []
                for round_ in range(1, args.rounds + 1):
                    seen: dict[int, float] = {}
                    if args.statements:
                        await probe.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                        await probe.execute("SELECT pg_stat_statements_reset()")
                    wal0 = await probe.fetchval("SELECT pg_current_wal_insert_lsn()")
                    pg0 = await backend_cpu(probe, seen)
                    app0, wall0 = time.process_time(), time.perf_counter()
                    await pay(http, headers, args.payments, args.clients)
                    app1, wall1 = time.process_time(), time.perf_counter()
                    pg1 = await backend_cpu(probe, seen)
                    wal = await probe.fetchval(
                        "SELECT pg_current_wal_insert_lsn() - $1::pg_lsn", wal0
                    )
                    row = _per_payment(args.payments, pg1 - pg0, app1 - app0, wall1 - wall0)
                    row["wal_bytes"] = float(wal) / args.payments
                    results.append(row)
                    print(
                        f"round {round_}: PG {row['pg_ms']:.3f} ms  app {row['app_ms']:.3f} ms"
                        f"  wall {row['wall_ms']:.3f} ms  WAL {row['wal_bytes']:.0f} B per payment"
                        f" ({args.payments} payments; WAL counts the whole server)",
                        flush=True,
                    )
                if args.statements:
                    await print_statements(probe, args.statements, args.payments)
                pgs = sorted(r["pg_ms"] for r in results)
                print(
                    f"revision {args.revision}: PG ms per payment, median {pgs[len(pgs) // 2]:.3f}"
                    f" (min {pgs[0]:.3f}, max {pgs[-1]:.3f})"
                )
        finally:
            await probe.close()
            await listener.stop()
            await notifications.stop()
            await deps.connectors.aclose()
            await main.close()
            await bookkeeping.close()


async def print_statements(conn: asyncpg.Connection, limit: int, count: int) -> None:
    rows = await conn.fetch(
        "SELECT calls, plans, total_exec_time, total_plan_time, rows, wal_bytes, query FROM pg_stat_statements"
        " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " ORDER BY total_exec_time DESC LIMIT $1",
        limit,
    )
    print("calls/pay plans/pay exec us/pay plan us/pay  WAL B/pay  statement")
    for r in rows:
        print(
            f"{r['calls'] / count:9.2f} {r['plans'] / count:9.2f}"
            f" {r['total_exec_time'] * 1e3 / count:11.1f} {r['total_plan_time'] * 1e3 / count:11.1f}"
            f" {float(r['wal_bytes']) / count:11.0f}  {' '.join(r['query'].split())[:150]}"
        )


def _per_payment(count: int, pg: float, app: float, wall: float) -> dict[str, Any]:
    return {"pg_ms": pg / count * 1e3, "app_ms": app / count * 1e3, "wall_ms": wall / count * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--server",
        default=os.environ.get(
            "PAYGRID_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--revision", default="head")
    parser.add_argument("--payments", type=int, default=2000, help="a multiple of --clients")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--pool", type=int, default=4)
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients")
    parser.add_argument("--statements", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument(
        "--sql", type=Path, help="a script to run on the scratch database after migrating"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
