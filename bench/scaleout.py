"""Scale-out on one PostgreSQL: confirmed payments/s with 1 and 2 API processes, renewals/s
with 1 and 2 workers, and CPU per payment (issue 16 §3).

On one embedded database (``--data-dir``, default ``.paygrid/bench-scaleout``) it starts,
for each configuration, N ``paygrid serve`` processes (the first with ``--demo``, which
makes the demo merchant; ``PAYGRID_WORKER_IN_PROCESS=false``, so they run no jobs) and M
``paygrid worker`` processes, all on the same data directory (one database, one encryption
key), and measures:

* **payments**: closed loop, as ``bench/payments.py`` does: ``wrk`` with ``payments.lua``
  (``POST /v1/payments``, confirm, success card, a fresh Idempotency-Key each), one wrk per
  API process with ``--connections`` split between them, ``--duration`` seconds after a
  ``--warmup``. Reports confirmed payments/s and the CPU per payment of the API processes,
  the workers (they dispatch the payments' events) and PostgreSQL (process tree CPU time);
* **renewals**: ``--subscriptions`` subscriptions, split over ``--clocks`` test clocks (a
  clock's advance is one job, so one clock keeps one worker busy; two clocks give two
  workers something to share), made as ``bench/renewals.py`` makes them (one over the API,
  the rest copied in SQL), all due at the same instant; every clock is advanced past the
  period's end and the finalize delay at once, and renewals/s is the number of paid renewal
  invoices over the time until every clock is ``ready``.

Configurations: payments with API x worker in {2, 1} x {2, 1}; renewals with 2 and then 1
worker. The processes start once (2 APIs, 2 workers): a 1-API run loads only the first API
process, and the second worker is stopped before the 1-worker runs. The machine is shared:
the report says how busy it was during each run.

Usage::

    .venv/bin/python bench/scaleout.py [--duration 10] [--warmup 3] [--connections 32]
        [--subscriptions 1000] [--clocks 2] [--fresh] [--data-dir .paygrid/bench-scaleout]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import asyncpg
import httpx
import psutil
import renewals
from demo_server import NO_RATE_LIMITS, read_demo_merchant, start_demo_server
from embedded_database import delete_data_dir, embedded_database, postmaster_pid
from payments import BenchConfig, parse_wrk_output, require_wrk, run_wrk
from processes import (
    REPO_ROOT,
    VENV_BIN,
    ChildProcess,
    ServerProcess,
    busy_percent,
    clean_environment,
    free_port,
    process_tree_cpu,
    warn_if_busy,
)
from run_results import code_version, new_results_dir, publish

# The renewal invoices are finalized and charged this long after the period's end (the
# default PAYGRID_INVOICE_FINALIZE_DELAY_SECONDS); the advance goes past it.
FINALIZE_DELAY_SECONDS = 3600
# The embedded server allows 100 connections: 2 API processes x (16 + 4 bookkeeping) and
# 2 workers x (16 jobs + 4) stay under it with room for this script (at the default of 32,
# 2 x 40 + 2 x 20 = 120 do not; docs/scaling.md).
SHARED = {
    "PAYGRID_WORKER_IN_PROCESS": "false",
    "PAYGRID_LOG_LEVEL": "WARNING",
    "PAYGRID_DB_POOL_SIZE": "16",
}


@dataclass(frozen=True, slots=True)
class Options:
    duration: int
    warmup: int
    connections: int
    subscriptions: int
    clocks: int
    data_dir: Path
    fresh: bool


@dataclass(frozen=True, slots=True)
class PaymentRun:
    apis: int
    workers: int
    payments: int
    errors: int
    seconds: float
    api_cpu_s: float
    worker_cpu_s: float
    database_cpu_s: float
    machine_busy_pct: float

    @property
    def rate(self) -> float:
        return self.payments / self.seconds if self.seconds else 0.0

    def per_payment_ms(self, seconds: float) -> float:
        return seconds * 1000 / self.payments if self.payments else 0.0


@dataclass(frozen=True, slots=True)
class RenewalRun:
    workers: int
    renewals: int
    subscriptions: int
    seconds: float
    worker_cpu_s: float
    database_cpu_s: float
    machine_busy_pct: float

    @property
    def rate(self) -> float:
        return self.renewals / self.seconds if self.seconds else 0.0

    def per_renewal_ms(self, seconds: float) -> float:
        return seconds * 1000 / self.renewals if self.renewals else 0.0


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="measured seconds (10)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed seconds first (3)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--subscriptions", type=int, default=1000, help="renewals per run")
    parser.add_argument("--clocks", type=int, default=2, help="test clocks they are on (2)")
    parser.add_argument("--data-dir", type=Path, default=REPO_ROOT / ".paygrid" / "bench-scaleout")
    parser.add_argument("--fresh", action="store_true", help="delete the data directory first")
    args = parser.parse_args(argv)
    if min(args.duration, args.connections, args.subscriptions, args.clocks) < 1:
        parser.error("durations, connections, subscriptions and clocks must be positive")
    if args.connections < 2 or args.subscriptions < args.clocks:
        parser.error("need 2+ connections and at least one subscription per clock")
    return Options(
        duration=args.duration,
        warmup=max(args.warmup, 0),
        connections=args.connections,
        subscriptions=args.subscriptions,
        clocks=args.clocks,
        data_dir=args.data_dir.resolve(),
        fresh=args.fresh,
    )


def start_api(data_dir: Path, number: int) -> ServerProcess:
    """API process ``number``: the first with ``--demo`` (it makes the demo merchant)."""
    if number == 1:
        return start_demo_server("serve1", data_dir, **SHARED)
    port = free_port()
    env = clean_environment()
    env.update(PAYGRID_DATA_DIR=str(data_dir), PAYGRID_PORT=str(port), **NO_RATE_LIMITS, **SHARED)
    command = [str(VENV_BIN / "paygrid"), "serve"]
    return ServerProcess(f"serve{number}", command, env, port, data_dir / "logs")


def start_worker(data_dir: Path, number: int) -> ChildProcess:
    env = clean_environment()
    env.update(PAYGRID_DATA_DIR=str(data_dir), **SHARED)
    command = [str(VENV_BIN / "paygrid"), "worker"]
    return ChildProcess(f"worker{number}", command, env, data_dir / "logs")


@contextlib.contextmanager
def cluster(
    data_dir: Path, apis: int, workers: int
) -> Iterator[tuple[list[ServerProcess], list[ChildProcess]]]:
    """``apis`` API processes (ready) and ``workers`` workers, stopped afterwards."""
    servers: list[ServerProcess] = []
    jobs: list[ChildProcess] = []
    try:
        servers.append(start_api(data_dir, 1))
        servers[0].wait_ready()  # the demo merchant exists before the others start
        servers += [start_api(data_dir, n) for n in range(2, apis + 1)]
        jobs += [start_worker(data_dir, n) for n in range(1, workers + 1)]
        for server in servers:
            server.wait_ready()
        time.sleep(2)  # the workers connect and start listening
        for job in jobs:
            job.check_alive()
        yield servers, jobs
    finally:
        for child in (*servers, *jobs):
            child.stop()


def tree_cpu(children: list[ServerProcess] | list[ChildProcess]) -> float:
    return sum(child.cpu_seconds() for child in children)


def measure_payments(
    wrk: str,
    options: Options,
    servers: list[ServerProcess],
    jobs: list[ChildProcess],
    results_dir: Path,
) -> PaymentRun:
    """Load on every server in ``servers`` at once; CPU of all of ``jobs`` and PostgreSQL."""
    apis, workers = len(servers), len(jobs)
    _, secret_key = read_demo_merchant(options.data_dir)
    config = BenchConfig(
        duration=options.duration,
        connections=max(options.connections // apis, 1),
        workers=1,
        threads=1,
        warmup=options.warmup,
        data_dir=options.data_dir,
        fresh=False,
    )
    urls = [f"{server.base_url}/v1/payments" for server in servers]

    def load(seconds: int) -> list[str]:
        with ThreadPoolExecutor(len(urls)) as pool:
            runs = [pool.submit(run_wrk, wrk, config, u, secret_key, seconds) for u in urls]
            return [run.result()[0] for run in runs]

    if options.warmup:
        load(options.warmup)
    database_pid = postmaster_pid(options.data_dir)
    before = (tree_cpu(servers), tree_cpu(jobs), process_tree_cpu(database_pid))
    machine = psutil.cpu_times()
    outputs = load(options.duration)
    busy = busy_percent(machine, psutil.cpu_times())
    after = (tree_cpu(servers), tree_cpu(jobs), process_tree_cpu(database_pid))
    label = f"payments-a{apis}-w{workers}"
    values = [parse_wrk_output(label, output) for output in outputs]
    for number, output in enumerate(outputs, start=1):
        (results_dir / f"{label}-api{number}.wrk.txt").write_text(output)
    requests = sum(int(v["requests"]) for v in values)
    failed = sum(int(v["non_2xx"] + v["not_succeeded"]) for v in values)
    return PaymentRun(
        apis=apis,
        workers=workers,
        payments=requests - failed,
        errors=failed + sum(int(v["connect_errors"] + v["timeouts"]) for v in values),
        seconds=max(v["duration_us"] for v in values) / 1e6,
        api_cpu_s=after[0] - before[0],
        worker_cpu_s=after[1] - before[1],
        database_cpu_s=after[2] - before[2],
        machine_busy_pct=busy,
    )


async def prepare_renewals(
    base_url: str, secret_key: str, database_url: str, options: Options
) -> list[str]:
    """``--subscriptions`` subscriptions on ``--clocks`` new clocks; returns the clocks."""
    clocks = []
    per_clock = options.subscriptions // options.clocks
    headers = {"Authorization": f"Bearer {secret_key}"}
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=120) as http:
            for _ in range(options.clocks):
                clock, first = await renewals.setup(http)
                await pool.execute(renewals.CLONE, first, per_clock - 1)
                clocks.append(clock)
    finally:
        await pool.close()
    return clocks


async def advance_all(base_url: str, secret_key: str, clocks: list[str]) -> float:
    """Advance every clock at once; the seconds until all are ``ready``."""
    target = renewals.PERIOD_END + FINALIZE_DELAY_SECONDS
    headers = {"Authorization": f"Bearer {secret_key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=120) as http:
        started = time.perf_counter()
        for clock in clocks:
            path = f"/v1/test_clocks/{clock}/advance"
            renewals.ok(await http.post(path, json={"frozen_time": target}))
        pending = set(clocks)
        while pending:
            await asyncio.sleep(0.2)
            for clock in list(pending):
                status = renewals.ok(await http.get(f"/v1/test_clocks/{clock}"))["status"]
                if status == "ready":
                    pending.discard(clock)
                elif status != "advancing":
                    raise RuntimeError(f"clock {clock} is {status}")
        return time.perf_counter() - started


async def paid_renewals(database_url: str, clocks: list[str]) -> tuple[int, int]:
    """(paid renewal invoices, subscriptions) of the customers on ``clocks``."""
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT count(i.id) FILTER (WHERE i.status = 'paid') AS paid,"
            " count(DISTINCT s.id) AS subscriptions FROM subscriptions s"
            " JOIN customers c ON c.id = s.customer_id"
            " LEFT JOIN invoices i ON i.subscription_id = s.id"
            " AND i.billing_reason = 'subscription_cycle'"
            " WHERE c.test_clock_id = ANY($1::text[])",
            clocks,
        )
    finally:
        await conn.close()
    assert row is not None
    return int(row["paid"]), int(row["subscriptions"])


def measure_renewals(
    options: Options, database_url: str, server: ServerProcess, jobs: list[ChildProcess]
) -> RenewalRun:
    """Renewals with every worker in ``jobs`` running."""
    workers = len(jobs)
    _, secret_key = read_demo_merchant(options.data_dir)
    base = server.base_url
    clocks = asyncio.run(prepare_renewals(base, secret_key, database_url, options))
    database_pid = postmaster_pid(options.data_dir)
    before = (tree_cpu(jobs), process_tree_cpu(database_pid))
    machine = psutil.cpu_times()
    seconds = asyncio.run(advance_all(base, secret_key, clocks))
    busy = busy_percent(machine, psutil.cpu_times())
    after = (tree_cpu(jobs), process_tree_cpu(database_pid))
    paid, subscriptions = asyncio.run(paid_renewals(database_url, clocks))
    return RenewalRun(
        workers=workers,
        renewals=paid,
        subscriptions=subscriptions,
        seconds=seconds,
        worker_cpu_s=after[0] - before[0],
        database_cpu_s=after[1] - before[1],
        machine_busy_pct=busy,
    )


def report(
    options: Options, version: str, payments: list[PaymentRun], renewed: list[RenewalRun]
) -> str:
    lines = [
        f"paygrid {version}, {os.cpu_count()} CPUs, one embedded PostgreSQL",
        f"payments: POST /v1/payments (confirm, success card), closed loop, {options.connections}"
        f" wrk connections split over the API processes, {options.duration} s",
        "",
        f"{'APIs':>4} {'workers':>7} {'ok/s':>8} {'errors':>6} {'API CPU':>9} {'worker CPU':>10}"
        f" {'PG CPU':>8} {'total':>8} {'busy':>5}",
    ]
    for run in payments:
        total = run.api_cpu_s + run.worker_cpu_s + run.database_cpu_s
        lines.append(
            f"{run.apis:>4} {run.workers:>7} {run.rate:>8.1f} {run.errors:>6}"
            f" {run.per_payment_ms(run.api_cpu_s):>7.2f}ms"
            f" {run.per_payment_ms(run.worker_cpu_s):>8.2f}ms"
            f" {run.per_payment_ms(run.database_cpu_s):>6.2f}ms"
            f" {run.per_payment_ms(total):>6.2f}ms {run.machine_busy_pct:>4.0f}%"
        )
    lines += [
        "(CPU per confirmed payment: process-tree CPU time of the API processes, the workers"
        " (event dispatch) and PostgreSQL over the measured run; busy: all CPUs)",
        "",
        f"renewals: {options.subscriptions} subscriptions on {options.clocks} test clocks, due"
        " at one instant, every clock advanced at once; 1 API process",
        "",
        f"{'workers':>7} {'paid':>6} {'of':>6} {'seconds':>8} {'renewals/s':>10}"
        f" {'worker CPU':>10} {'PG CPU':>8} {'busy':>5}",
    ]
    for renewal in renewed:
        lines.append(
            f"{renewal.workers:>7} {renewal.renewals:>6} {renewal.subscriptions:>6}"
            f" {renewal.seconds:>8.2f} {renewal.rate:>10.1f}"
            f" {renewal.per_renewal_ms(renewal.worker_cpu_s):>8.2f}ms"
            f" {renewal.per_renewal_ms(renewal.database_cpu_s):>6.2f}ms"
            f" {renewal.machine_busy_pct:>4.0f}%"
        )
    lines.append("(CPU per renewal: the workers and PostgreSQL)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    wrk = require_wrk()
    warn_if_busy()
    version = code_version()
    results_dir = new_results_dir("scaleout")
    if options.fresh:
        delete_data_dir(options.data_dir, prefix="--fresh: ")
    payments: list[PaymentRun] = []
    renewed: list[RenewalRun] = []
    # One start of 2 API processes and 2 workers (starting one costs tens of seconds of
    # CPU on a busy machine): "1 API" loads only the first (the other stays idle), and the
    # second worker is stopped for the 1-worker half.
    with (
        embedded_database(options.data_dir) as database_url,
        cluster(options.data_dir, 2, 2) as (servers, jobs),
    ):
        for workers in (2, 1):
            if workers == 1:
                jobs[1].stop()
            for apis in (2, 1):
                print(f"payments: {apis} API process(es), {workers} worker(s)", flush=True)
                run = measure_payments(wrk, options, servers[:apis], jobs[:workers], results_dir)
                payments.append(run)
                print(f"  {run.rate:.1f} payments/s, {run.errors} errors", flush=True)
            print(f"renewals: {workers} worker(s)", flush=True)
            renewed.append(measure_renewals(options, database_url, servers[0], jobs[:workers]))
            print(f"  {renewed[-1].rate:.1f} renewals/s", flush=True)
    text = report(options, version, payments, renewed)
    summary = {
        "version": version,
        "options": {**asdict(options), "data_dir": str(options.data_dir)},
        "cpus": os.cpu_count(),
        "payments": [{**asdict(run), "rate": run.rate} for run in payments],
        "renewals": [{**asdict(run), "rate": run.rate} for run in renewed],
    }
    publish(results_dir, text, summary, "wrk output and summary")
    return 0


if __name__ == "__main__":
    sys.exit(main())
