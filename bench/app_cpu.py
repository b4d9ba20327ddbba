"""The app's own CPU per confirmed payment, measured in-process.

Creates a fresh database on a PostgreSQL server (``--server``, default
``postgresql://postgres@127.0.0.1:5432/postgres``), migrates it, builds the real app as
``paygrid serve`` does (``create_app`` with a database URL: its own pools, its LISTEN
connection and lookup caches; the background worker off, so only the request path is
counted), creates a merchant, and calls the ASGI callable directly (no HTTP server, no
client library) for ``--payments`` confirmed payments one after another, after ``--warmup``
untimed ones. Each payment is ``POST /v1/payments`` with ``confirm: true``, the simulator's
success card as raw card data and a fresh ``Idempotency-Key``, as ``bench/payments.py``
sends. It prints (on stdout; the app logs each request on stderr) ``time.process_time()``
per payment (this process: the app, asyncpg's client side and the event loop; PostgreSQL
runs elsewhere), as a mean and as the median of each payment's own, and wall time per
payment. The database is dropped at the end. The machine is shared, so run it several
times (or with ``--repeat``) and compare the medians and the lowest means.

Usage: ``.venv/bin/python bench/app_cpu.py [--payments 300] [--warmup 50] [--repeat 1]
[--profile FILE]`` (``--profile`` writes a cProfile of the timed payments to FILE).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson

from paygrid.app import create_app
from paygrid.config import Settings
from paygrid.db import engine
from paygrid.services.merchants import create_merchant

SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
PAYMENT_BODY = orjson.dumps(
    {
        "amount": 2000,
        "currency": "USD",
        "confirm": True,
        "payment_method_data": {
            "type": "card",
            "card": {
                "number": "4242424242424242",
                "exp_month": 12,
                "exp_year": 2034,
                "cvc": "123",
            },
        },
    }
)
UNLIMITED = "1000000/second"

Asgi = Any  # the app, called as a plain ASGI callable


async def _admin(server: str, sql: str) -> None:
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@asynccontextmanager
async def scratch_database(server: str) -> AsyncIterator[str]:
    """A fresh, migrated database on ``server``, dropped afterwards."""
    name = f"paygrid_app_cpu_{uuid.uuid4().hex[:10]}"
    await _admin(server, f'CREATE DATABASE "{name}"')
    url = server.rsplit("/", 1)[0] + "/" + name
    try:
        await asyncio.to_thread(engine.upgrade, url)
        yield url
    finally:
        await _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def post(app: Asgi, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    """One request through the ASGI callable; raises unless it answered 200."""
    status = 0
    chunks: list[bytes] = []
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if received:
            await asyncio.Event().wait()  # a client that stays connected
        received = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8000"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    await app(scope, receive, send)
    answer = b"".join(chunks)
    if status != 200:
        raise RuntimeError(f"payment failed: {status} {answer[:300]!r}")
    return answer


async def pay(app: Asgi, secret_key: str) -> None:
    headers = [
        (b"authorization", f"Bearer {secret_key}".encode()),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(PAYMENT_BODY)).encode()),
        (b"idempotency-key", f"app-cpu-{uuid.uuid4().hex}".encode()),
    ]
    answer = orjson.loads(await post(app, "/v1/payments", headers, PAYMENT_BODY))
    if answer["status"] != "succeeded":
        raise RuntimeError(f"payment not succeeded: {answer['status']}")


async def measure(
    app: Asgi, secret_key: str, payments: int, profile: cProfile.Profile | None
) -> tuple[float, float, float]:
    """(mean CPU ms, median CPU ms, wall ms) per payment over ``payments`` sequential
    payments. The median of the payments' own CPU times is the steadier figure on a shared
    machine: a payment slowed by another process's load does not move it."""
    each: list[float] = []
    cpu, wall = time.process_time(), time.perf_counter()
    if profile is not None:
        profile.enable()
    for _ in range(payments):
        started = time.process_time()
        await pay(app, secret_key)
        each.append(time.process_time() - started)
    if profile is not None:
        profile.disable()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu * 1000 / payments, statistics.median(each) * 1000, wall * 1000 / payments


async def run(args: argparse.Namespace) -> None:
    async with scratch_database(args.server) as url:
        settings = Settings(
            database_url=url,
            worker_in_process=False,
            rate_limit_per_key=UNLIMITED,
            rate_limit_per_ip=UNLIMITED,
            rate_limit_payments_per_customer=UNLIMITED,
        )
        app = create_app(settings, database_url=url)
        async with app.router.lifespan_context(app):
            merchant = await create_merchant(app.state.deps.pool, "app_cpu bench")
            secret_key = merchant.key("secret", livemode=False)
            for _ in range(args.warmup):
                await pay(app, secret_key)
            profile = cProfile.Profile(time.process_time) if args.profile else None
            for number in range(1, args.repeat + 1):
                mean_ms, median_ms, wall_ms = await measure(app, secret_key, args.payments, profile)
                print(
                    f"run {number}: {args.payments} confirmed payments (worker off):"
                    f" app CPU {mean_ms:.3f} ms/payment (median {median_ms:.3f}),"
                    f" wall {wall_ms:.3f} ms/payment",
                    flush=True,
                )
            if profile is not None:
                profile.dump_stats(args.profile)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=SERVER, help="admin URL of the PostgreSQL server")
    parser.add_argument("--payments", type=int, default=300, help="timed payments per run")
    parser.add_argument("--warmup", type=int, default=50, help="untimed payments first")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs on the same app")
    parser.add_argument("--profile", default=None, help="write a cProfile of the timed runs")
    args = parser.parse_args()
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
