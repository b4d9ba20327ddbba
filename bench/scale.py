"""Latency as data grows: p50/p99 of the read paths and a confirmed payment at 10k and 1M.

For each size (``--sizes``, total payments in the database, default 10k then 1M) the script
stops paygrid, bulk-loads payments up to that size with ``COPY`` (asyncpg
``copy_records_to_table``) into the embedded database, runs ``VACUUM ANALYZE``, starts
``paygrid serve --demo`` again and measures each endpoint with a closed-loop client: a
warm-up, then a fixed number of requests (``--requests``, default 300) from
``--concurrency`` workers (default 1). It prints p50 and p99 per endpoint and size, and the
ratio of the largest size's p99 to the smallest's (target: at most 1.5). The payments
summary (``GET /v1/reports/payments_summary``, 30 days by day and status, and 366 days by
day) reads every payment of its window, so it is held to an absolute p99 at the largest size
instead (``REPORT_TARGET_MS``).

The data, half for the demo merchant and half for another merchant (so tenant filters
matter), spread over the last 365 days, ids in creation order as the app makes them:
payments in realistic states (80% succeeded), 1.3 authorize attempts per payment, a
``payment.created`` and an outcome event per payment, 5% of succeeded payments refunded
(with their refund attempt and event), 70% with a customer (one customer per 100
payments). Rows are loaded with ``session_replication_role = replica``, which skips
foreign-key checks and triggers for the generated (consistent) rows: the loaded history has
no audit entries; everything the app writes during the run is audited as usual.

Usage::

    .venv/bin/python bench/scale.py [--sizes 10000,1000000] [--requests 300] [--warmup 30]
                                    [--concurrency 1] [--data-dir .paygrid/bench-scale]

The data directory is deleted first (it must hold only what a bench run puts there). The
report and ``summary.json`` go to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import psutil
from demo_server import PAYMENT_BODY, read_demo_merchant, start_demo_server
from embedded_database import delete_data_dir, embedded_database
from processes import REPO_ROOT, ServerProcess, busy_percent, warn_if_busy
from run_results import code_version, new_results_dir, publish, summary_header
from scale_data import Loader

from paygrid.db import engine
from paygrid.services.dashboard_users import create_user

TARGET_RATIO = 1.5
# The payments summary reads every payment of its window, so its time grows with them: it is
# held to an absolute p99 at the largest size instead of the ratio.
REPORTS = "GET /v1/reports"
REPORT_TARGET_MS = {"30d": 250.0, "366d": 2500.0}
PASSWORD = "scale bench password"  # noqa: S105 - a throwaway bench user
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True, slots=True)
class ScaleConfig:
    sizes: list[int]
    requests: int
    warmup: int
    concurrency: int
    data_dir: Path


def parse_args(argv: list[str] | None = None) -> ScaleConfig:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,1000000", help="payments (10000,1000000)")
    parser.add_argument("--requests", type=int, default=300, help="per endpoint (300)")
    parser.add_argument("--warmup", type=int, default=30, help="untimed per endpoint (30)")
    parser.add_argument("--concurrency", type=int, default=1, help="closed-loop workers (1)")
    parser.add_argument(
        "--data-dir", type=Path, default=REPO_ROOT / ".paygrid" / "bench-scale",
        help="embedded database directory, deleted first (.paygrid/bench-scale)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    sizes = sorted(int(size) for size in args.sizes.split(","))
    if sizes[0] < 1000 or min(args.requests, args.concurrency) < 1 or args.warmup < 0:
        parser.error("sizes must be at least 1000; requests and concurrency positive")
    return ScaleConfig(sizes, args.requests, args.warmup, args.concurrency, args.data_dir)


@dataclass(frozen=True, slots=True)
class Targets:
    """What the endpoints are asked about, picked from the loaded data."""

    payment_ids: list[str]
    customers: list[str]
    deep_cursor: str


async def pick_targets(url: str, merchant_id: str, customers: list[str]) -> Targets:
    conn = await asyncpg.connect(url)
    try:
        ids = await conn.fetch(
            "SELECT id FROM payments WHERE merchant_id = $1 AND livemode = false"
            " ORDER BY random() LIMIT 500",
            merchant_id,
        )
        # A cursor 170 days back, inside the 180-day window the filtered lists ask for.
        deep = await conn.fetchval(
            "SELECT id FROM payments WHERE merchant_id = $1 AND livemode = false"
            " AND status = 'succeeded' AND created_at < $2 ORDER BY created_at DESC LIMIT 1",
            merchant_id,
            datetime.now(UTC) - timedelta(days=170),
        )
    finally:
        await conn.close()
    return Targets([r["id"] for r in ids], customers, deep)


Request = Callable[[int], Awaitable[httpx.Response]]


def endpoints(
    api: httpx.AsyncClient, dashboard: httpx.AsyncClient, t: Targets
) -> dict[str, Request]:
    """The measured requests; each takes the request's number and picks its target."""
    now = int(time.time())
    window: dict[str, str | int] = {
        "status": "succeeded",
        "created[gte]": now - 180 * 86400,
        "created[lte]": now,
    }

    def pay(n: int) -> Awaitable[httpx.Response]:
        return api.post(
            "/v1/payments", json=PAYMENT_BODY, headers={"Idempotency-Key": uuid.uuid4().hex}
        )

    return {
        "GET /v1/payments/{id}": lambda n: api.get(
            f"/v1/payments/{t.payment_ids[n % len(t.payment_ids)]}"
        ),
        "GET /v1/payments status+created": lambda n: api.get("/v1/payments", params=window),
        "  deep page (starting_after)": lambda n: api.get(
            "/v1/payments", params={**window, "starting_after": t.deep_cursor}
        ),
        "GET /v1/payments customer+status": lambda n: api.get(
            "/v1/payments",
            params={**window, "customer": t.customers[n % len(t.customers)]},
        ),
        "GET /v1/events": lambda n: api.get("/v1/events"),
        "GET /dashboard/payments": lambda n: dashboard.get("/dashboard/payments"),
        "POST /v1/payments (confirm)": pay,
        # Aggregates: their cost follows the payments in the window (see REPORT_TARGET_MS).
        f"{REPORTS} 30d day+status": lambda n: api.get(
            "/v1/reports/payments_summary", params={"group_by": "day,status"}
        ),
        f"{REPORTS} 366d by day": lambda n: api.get(
            "/v1/reports/payments_summary",
            params={"from": now - 366 * 86400, "to": now, "timezone": "America/New_York"},
        ),
    }


async def measure(request: Request, count: int, warmup: int, concurrency: int) -> list[float]:
    """Latencies (ms) of ``count`` requests after ``warmup``, ``concurrency`` at a time."""
    for n in range(warmup):
        (await request(n)).raise_for_status()
    latencies: list[float] = []
    counter = iter(range(count))

    async def worker() -> None:
        for n in counter:
            started = time.perf_counter()
            response = await request(n)
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"{response.status_code}: {response.text[:300]}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def sign_in(dashboard: httpx.AsyncClient, url: str, merchant_id: str) -> None:
    """Create a dashboard admin of the demo merchant and sign in as them."""
    pool = await engine.create_pool(url, 2)
    try:
        user = await create_user(
            pool, merchant_id=merchant_id, email=f"scale-{uuid.uuid4().hex[:8]}@example.com",
            role="admin", password=PASSWORD,
        )  # fmt: skip
    finally:
        await pool.close()
    page = await dashboard.get("/dashboard/login")
    found = CSRF.search(page.text)
    assert found is not None, page.text[:300]
    form = {"email": user.email, "password": PASSWORD, "csrf_token": found.group(1)}
    reply = await dashboard.post("/dashboard/login", data=form)
    if reply.status_code != 303:
        raise RuntimeError(f"dashboard sign-in failed: {reply.status_code}")


async def measure_size(
    config: ScaleConfig, server: ServerProcess, url: str, merchant_id: str, targets: Targets
) -> dict[str, list[float]]:
    _, secret_key = read_demo_merchant(config.data_dir)
    limits = httpx.Limits(max_connections=config.concurrency)
    headers = {"Authorization": f"Bearer {secret_key}"}
    async with (
        httpx.AsyncClient(base_url=server.base_url, headers=headers, limits=limits) as api,
        httpx.AsyncClient(base_url=server.base_url, limits=limits) as dashboard,
    ):
        await sign_in(dashboard, url, merchant_id)
        results = {}
        for name, request in endpoints(api, dashboard, targets).items():
            print(f"    {name.strip()}", flush=True)
            results[name] = await measure(
                request, config.requests, config.warmup, config.concurrency
            )
        return results


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def report(
    config: ScaleConfig, version: str, results: dict[int, dict[str, list[float]]],
    load_seconds: dict[int, float], busy: dict[int, float],
) -> str:  # fmt: skip
    small, large = config.sizes[0], config.sizes[-1]
    header = f"{'endpoint':<34}" + "".join(
        f" {f'{size:,} p50':>12} {f'{size:,} p99':>12}" for size in config.sizes
    )
    lines = [
        f"paygrid {version}",
        f"{config.requests} requests per endpoint after {config.warmup} warm-up,"
        f" {config.concurrency} closed-loop worker(s); latencies in ms",
        "",
        header + f" {'p99 ratio':>10}",
    ]
    ratios = {}
    for name in results[small]:
        row = f"{name:<34}"
        for size in config.sizes:
            values = results[size][name]
            row += f" {percentile(values, 50):>12.2f} {percentile(values, 99):>12.2f}"
        ratios[name] = percentile(results[large][name], 99) / percentile(results[small][name], 99)
        lines.append(row + f" {ratios[name]:>9.2f}x")
    lines.append("")
    lines += [
        f"load to {size:,} payments: {load_seconds[size]:.0f} s; all CPUs {busy[size]:.0f}% busy"
        " while measuring (this run's client, server and database included)"
        for size in config.sizes
    ]
    bounded = [name for name in ratios if not name.startswith(REPORTS)]
    worst = max(bounded, key=lambda name: ratios[name])
    met = ratios[worst] <= TARGET_RATIO
    lines.append(
        f"target: p99 at {large:,} within {TARGET_RATIO}x of p99 at {small:,}:"
        f" {'met' if met else 'MISSED'} (worst: {worst.strip()}, {ratios[worst]:.2f}x)"
    )
    for name in sorted(set(ratios) - set(bounded)):
        span = name.removeprefix(REPORTS).split()[0]
        p99 = percentile(results[large][name], 99)
        verdict = "met" if p99 <= REPORT_TARGET_MS[span] else "MISSED"
        lines.append(
            f"target: {name} p99 at {large:,} within {REPORT_TARGET_MS[span]:.0f} ms:"
            f" {verdict} ({p99:.1f} ms)"
        )
    return "\n".join(lines)


async def load(loader: Loader, url: str, size: int) -> float:
    started = time.monotonic()
    conn = await asyncpg.connect(url)
    try:
        await loader.load_to(conn, url, size)
        print(f"  copied in {time.monotonic() - started:.0f} s; VACUUM ANALYZE", flush=True)
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    warn_if_busy()
    version = code_version()
    results_dir = new_results_dir("scale")
    delete_data_dir(config.data_dir, prefix="bench/scale.py: ")
    results: dict[int, dict[str, list[float]]] = {}
    load_seconds: dict[int, float] = {}
    busy: dict[int, float] = {}
    with embedded_database(config.data_dir) as url:
        server = start_demo_server("paygrid-scale", config.data_dir)
        server.wait_ready()  # migrates and creates the demo merchant
        server.stop()
        merchant_id, _ = read_demo_merchant(config.data_dir)
        loader = Loader(merchant_id)
        for size in config.sizes:
            print(f"loading {size:,} payments", flush=True)
            load_seconds[size] = asyncio.run(load(loader, url, size))
            print(f"  loaded in {load_seconds[size]:.0f} s; measuring", flush=True)
            targets = asyncio.run(pick_targets(url, merchant_id, loader.demo_customers()))
            server = start_demo_server("paygrid-scale", config.data_dir)
            try:
                server.wait_ready()
                before = psutil.cpu_times()
                results[size] = asyncio.run(measure_size(config, server, url, merchant_id, targets))
                busy[size] = busy_percent(before, psutil.cpu_times())
            finally:
                server.stop()
    text = report(config, version, results, load_seconds, busy)
    summary = {
        **summary_header(version, config),
        "load_seconds": load_seconds,
        "machine_busy_pct": busy,
        "results": {
            size: {
                name: {"p50_ms": percentile(v, 50), "p99_ms": percentile(v, 99)}
                for name, v in by_name.items()
            }
            for size, by_name in results.items()
        },
    }
    publish(results_dir, text, summary, "report and summary")
    return 0


if __name__ == "__main__":
    sys.exit(main())
