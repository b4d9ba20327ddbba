"""Benchmark webhook delivery: deliveries per second, and the delay from commit to delivery.

For each worker count asked for (``--workers 1,2``) it starts, on a fresh embedded database
in ``.paygrid/bench-webhooks``:

* ``paygrid serve --demo`` with ``PAYGRID_WORKER_IN_PROCESS=false``, so the API process
  delivers nothing; it is used only to create a payment (whose events are the template of
  the generated ones) and the webhook endpoint, through the API;
* ``bench/webhook_receiver.py``, a raw asyncio HTTP server on 127.0.0.1 in its own process
  that answers 200 at once and records each request's ``webhook-id`` and arrival time; after
  the run it verifies every request's signature with the ``standardwebhooks`` library;
* that many ``paygrid worker`` processes on the same data directory (they share the embedded
  server), started one after the other. Each runs the job worker and the outbox dispatcher,
  with paygrid's defaults.

Events are written straight into the outbox (the ``events`` table), as the API would write
them: the same columns, a copy of a real payment's event data, and the NOTIFY trigger fires
on commit. ``created_at`` (the writing transaction's start, just before its commit) is read
back with ``RETURNING``; commit-to-delivery is the receiver's arrival time minus it. Both
clocks are this machine's.

Phases, per worker count:

1. warm-up (``--warmup`` seconds at ``--rate``; not reported), so pools and prepared
   statements are warm;
2. burst: ``--events`` events committed as fast as possible, ``--batch`` per transaction.
   Deliveries/s = (deliveries - 1) / (last arrival - first arrival); also reported from the
   first commit to the last arrival, which includes dispatching the first batch;
3. rate: ``--rate`` events/s for ``--duration`` s, ``--per-commit`` events per transaction
   (2, like a payment), open loop: commits are scheduled on a fixed clock and several
   producer connections keep the schedule even when one commit is slow. Reports the
   commit-to-delivery p50/p95/p99/max and the delivered rate.

After each phase it waits (``--timeout`` seconds at most) until the receiver has every event;
what is still missing then counts as an error, as do duplicates, non-2xx attempts and bad
signatures. CPU per delivery is measured for the workers, PostgreSQL, the receiver and this
process (the producer), with how busy the whole machine was.

``--profile`` attaches ``py-spy`` (200 samples/s; each sample pauses the process briefly) to
every worker during the burst and prints where their time goes (``bench/pyspy_summary.py``);
the numbers of a profiled run are marked as such.

Usage::

    .venv/bin/python bench/webhooks.py [--workers 1,2] [--events 10000] [--batch 500]
        [--rate 500] [--duration 20] [--per-commit 2] [--warmup 3] [--timeout 120]
        [--concurrency N] [--profile] [--reuse] [--data-dir .paygrid/bench-webhooks]

Raw numbers (per-event times, a JSON summary, the report, profiles) go to ``bench/results/``
(gitignored); process logs go to ``<data dir>/logs/``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import resource
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
from demo_server import pay, read_demo_merchant, start_demo_server
from embedded_database import delete_data_dir, embedded_database, postmaster_pid
from processes import (
    BENCH_DIR,
    REPO_ROOT,
    VENV_BIN,
    ChildProcess,
    ServerProcess,
    busy_percent,
    busy_seconds,
    clean_environment,
    free_port,
    process_tree_cpu,
    tree_pids,
    wait_for_http,
    warn_if_busy,
)
from pyspy_summary import HotSpots, summarize_raw_profile
from run_results import code_version, new_results_dir, publish, summary_header, target_line

from paygrid.db.executor import Connection
from paygrid.ids import new_id

RECEIVER_SCRIPT = BENCH_DIR / "webhook_receiver.py"
DEFAULT_DATA_DIR = REPO_ROOT / ".paygrid" / "bench-webhooks"
WORKER_READY_SECONDS = 120.0
POLL_SECONDS = 0.1
PRODUCERS = 4  # connections that share the rate phase's commit schedule

TARGET_RATE = 500.0
TARGET_P99_MS = 1000.0

INSERT_EVENTS = (
    "INSERT INTO events (id, merchant_id, livemode, type, object_id, data)"
    " SELECT t.id, $1, false, t.type, t.object_id, t.data::jsonb"
    " FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS t(id, type, object_id, data)"
    " RETURNING id, created_at"
)


# -- configuration ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """The command line, validated."""

    workers: tuple[int, ...]
    events: int
    batch: int
    rate: float
    duration: float
    per_commit: int
    warmup: float
    timeout: float
    concurrency: int | None
    profile: bool
    reuse: bool
    data_dir: Path


def parse_workers(text: str) -> tuple[int, ...]:
    """``"1,2"`` -> ``(1, 2)``."""
    try:
        counts = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of worker counts: {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("worker counts must be positive")
    return counts


def parse_args(argv: list[str] | None = None) -> BenchConfig:
    """Read and check the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workers",
        type=parse_workers,
        default=(1,),
        help="worker processes; a comma-separated list runs each count in turn (1)",
    )
    parser.add_argument("--events", type=int, default=10_000, help="events in the burst (10000)")
    parser.add_argument("--batch", type=int, default=500, help="burst events per commit (500)")
    parser.add_argument("--rate", type=float, default=500.0, help="rate phase events/s (500)")
    parser.add_argument("--duration", type=float, default=20.0, help="rate phase seconds (20)")
    parser.add_argument(
        "--per-commit", type=int, default=2, help="rate phase events per commit (2, a payment's)"
    )
    parser.add_argument(
        "--warmup", type=float, default=3.0, help="untimed seconds at --rate first (3)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds to wait for the last deliveries of a phase (120)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="PAYGRID_WORKER_CONCURRENCY for the workers (default: paygrid's default)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="sample the workers with py-spy during the burst"
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the data directory of an earlier run (default: start from an empty one)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="embedded database directory (.paygrid/bench-webhooks)",
    )
    args = parser.parse_args(argv)
    if min(args.events, args.batch, args.per_commit) < 1:
        parser.error("--events, --batch and --per-commit must be positive")
    if args.rate <= 0 or args.duration <= 0 or args.warmup < 0 or args.timeout <= 0:
        parser.error("--rate, --duration and --timeout must be positive, --warmup not negative")
    if args.concurrency is not None and args.concurrency < 1:
        parser.error("--concurrency must be positive")
    return BenchConfig(
        workers=args.workers,
        events=args.events,
        batch=args.batch,
        rate=args.rate,
        duration=args.duration,
        per_commit=args.per_commit,
        warmup=args.warmup,
        timeout=args.timeout,
        concurrency=args.concurrency,
        profile=args.profile,
        reuse=args.reuse,
        data_dir=args.data_dir.resolve(),
    )


# -- processes --------------------------------------------------------------------------------


def worker_settings(config: BenchConfig) -> dict[str, str]:
    """PAYGRID_WORKER_CONCURRENCY, when ``--concurrency`` sets it; and the webhook allow-list,
    because the receiver listens on loopback."""
    allowed = {"PAYGRID_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1"}
    if config.concurrency is None:
        return allowed
    return {**allowed, "PAYGRID_WORKER_CONCURRENCY": str(config.concurrency)}


def start_api(config: BenchConfig) -> ServerProcess:
    """Start ``paygrid serve --demo`` with no worker in the API process."""
    return start_demo_server(
        "api", config.data_dir, PAYGRID_WORKER_IN_PROCESS="false", **worker_settings(config)
    )


def start_workers(
    config: BenchConfig, count: int, database_url: str, workers: list[ChildProcess]
) -> None:
    """Start ``count`` workers into ``workers`` (the caller stops them), one at a time: each
    must have registered before the next starts, because paygrid processes that join the
    embedded server at the same instant can trip over its shared handle file."""
    command = [str(VENV_BIN / "paygrid"), "worker"]
    env = clean_environment()
    env.update(PAYGRID_DATA_DIR=str(config.data_dir), **worker_settings(config))
    for n in range(1, count + 1):
        worker = ChildProcess(f"worker-{n}", command, env, config.data_dir / "logs")
        workers.append(worker)
        asyncio.run(wait_for_workers(database_url, [worker]))


def start_receiver(config: BenchConfig, port: int, secret: str, out: Path) -> ChildProcess:
    """Start the receiver; it learns the endpoint secret from its environment."""
    env = clean_environment()
    env["BENCH_WEBHOOK_SECRET"] = secret
    command = [sys.executable, str(RECEIVER_SCRIPT), "--port", str(port), "--out", str(out)]
    return ChildProcess("receiver", command, env, config.data_dir / "logs")


def wait_for_receiver(receiver: ChildProcess, url: str) -> None:
    """Poll the receiver's ``/_stats`` until it answers."""
    if not wait_for_http(receiver, f"{url}/_stats", timeout=30, interval=0.1):
        raise RuntimeError(f"the receiver did not start; see {receiver.log_path}")


def setup_through_api(api: ServerProcess, secret_key: str, receiver_url: str) -> tuple[str, str]:
    """Make one real payment (its events are the template), then create the endpoint: the
    payment's own events predate it, so they are not delivered. Returns (payment id,
    endpoint secret)."""
    auth = {"Authorization": f"Bearer {secret_key}"}
    with httpx.Client(base_url=api.base_url, headers=auth, timeout=10) as client:
        payment_id = pay(client, api.base_url, secret_key, "bench-webhooks")
        time.sleep(0.01)  # the endpoint must be strictly newer than the payment's events
        reply = client.post(
            "/v1/webhook_endpoints",
            json={"url": f"{receiver_url}/webhooks", "enabled_events": ["*"]},
        )
        if reply.status_code != 200:
            raise RuntimeError(f"creating the endpoint failed: {reply.status_code} {reply.text}")
        secret: str = reply.json()["secret"]
    return payment_id, secret


# -- producing events -------------------------------------------------------------------------


@dataclass(slots=True)
class Produced:
    """Events one phase committed: id -> (created_at, time the commit was acknowledged)."""

    events: dict[str, tuple[float, float]] = field(default_factory=dict)
    commits: int = 0
    started: float = 0.0
    finished: float = 0.0
    max_lag_s: float = 0.0  # how late the rate phase's latest commit started

    @property
    def committed_rate(self) -> float:
        """Events committed per second while producing."""
        span = self.finished - self.started
        return len(self.events) / span if span > 0 else 0.0


class EventFactory:
    """Events shaped like the template payment's: its event types in order, its data with
    a fresh object id per group."""

    def __init__(self, merchant_id: str, templates: list[tuple[str, dict[str, Any]]]) -> None:
        if not templates:
            raise RuntimeError("the template payment has no events")
        self.merchant_id = merchant_id
        self.templates = templates

    def rows(self, count: int) -> tuple[list[str], list[str], list[str], list[str]]:
        """Column values for ``count`` new events."""
        ids, types, objects, data = [], [], [], []
        object_id = new_id("pay")
        for n in range(count):
            event_type, snapshot = self.templates[n % len(self.templates)]
            if n and n % len(self.templates) == 0:
                object_id = new_id("pay")
            ids.append(new_id("evt"))
            types.append(event_type)
            objects.append(object_id)
            data.append(json.dumps({"object": {**snapshot, "id": object_id}}))
        return ids, types, objects, data

    async def commit(self, conn: Connection, count: int, produced: Produced) -> None:
        """Insert ``count`` events in one transaction (one statement, autocommit)."""
        ids, types, objects, data = self.rows(count)
        rows = await conn.fetch(INSERT_EVENTS, self.merchant_id, ids, types, objects, data)
        acknowledged = time.time()
        for row in rows:
            produced.events[row["id"]] = (row["created_at"].timestamp(), acknowledged)
        produced.commits += 1


async def load_templates(pool: asyncpg.Pool, payment_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The (type, object) of each event the template payment produced, in order."""
    rows = await pool.fetch(
        "SELECT type, data::text AS data FROM events WHERE object_id = $1 ORDER BY id", payment_id
    )
    return [(row["type"], json.loads(row["data"])["object"]) for row in rows]


async def produce_burst(
    pool: asyncpg.Pool, factory: EventFactory, total: int, batch: int
) -> Produced:
    """Commit ``total`` events as fast as one connection can, ``batch`` per commit."""
    produced = Produced(started=time.time())
    async with pool.acquire() as conn:
        remaining = total
        while remaining:
            count = min(batch, remaining)
            await factory.commit(conn, count, produced)
            remaining -= count
    produced.finished = time.time()
    return produced


async def produce_at_rate(
    pool: asyncpg.Pool, factory: EventFactory, rate: float, seconds: float, per_commit: int
) -> Produced:
    """Open loop: commit k is due at start + k * per_commit / rate; ``PRODUCERS``
    connections take the next due commit in turn, so one slow commit does not delay the
    schedule."""
    interval = per_commit / rate
    commits = max(1, round(rate * seconds / per_commit))
    produced = Produced()
    next_slot = 0
    start = time.monotonic() + 0.05
    produced.started = time.time() + 0.05

    async def producer() -> None:
        nonlocal next_slot
        async with pool.acquire() as conn:
            while next_slot < commits:
                slot = next_slot
                next_slot += 1
                due = start + slot * interval
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    produced.max_lag_s = max(produced.max_lag_s, -delay)
                await factory.commit(conn, per_commit, produced)

    await asyncio.gather(*(producer() for _ in range(PRODUCERS)))
    produced.finished = time.time()
    return produced


# -- measuring --------------------------------------------------------------------------------


@dataclass(slots=True)
class CpuSnapshot:
    """CPU seconds used so far by each part, by every process on the machine (to name what
    else ran during a phase), and the machine's CPU times."""

    parts: dict[str, float]
    machine: Any
    everyone: dict[int, tuple[str, float]]
    ours: set[int]


@dataclass(frozen=True, slots=True)
class Meters:
    """How to read each part's CPU seconds; PostgreSQL's server is not our child."""

    parts: dict[str, Callable[[], float]]
    database_pid: int

    def snapshot(self) -> CpuSnapshot:
        """Read every meter now."""
        return CpuSnapshot(
            {name: read() for name, read in self.parts.items()},
            psutil.cpu_times(),
            all_processes(),
            tree_pids(os.getpid()) | tree_pids(self.database_pid),
        )


def all_processes() -> dict[int, tuple[str, float]]:
    """pid -> (a label from its user and command line, CPU seconds so far)."""
    found = {}
    for process in psutil.process_iter(["username", "name", "cmdline", "cpu_times"]):
        info = process.info
        times = info["cpu_times"]
        if times is None:
            continue
        command = " ".join(info["cmdline"] or [info["name"] or "?"])
        found[process.pid] = (
            f"{info['username'] or '?'}: {command[:80]}",
            times.user + times.system,
        )
    return found


def other_processes(
    before: CpuSnapshot, after: CpuSnapshot, top: int = 3
) -> list[tuple[str, float]]:
    """The processes outside this benchmark that used the most CPU between two snapshots
    (by label; those that started and ended in between are not seen)."""
    ours = before.ours | after.ours
    used: dict[str, float] = {}
    for pid, (label, seconds) in after.everyone.items():
        if pid in ours:
            continue
        previous = before.everyone.get(pid)
        start = previous[1] if previous is not None and previous[0] == label else 0.0
        used[label] = used.get(label, 0.0) + seconds - start
    ranked = sorted(used.items(), key=lambda item: item[1], reverse=True)[:top]
    return [(label, round(seconds, 1)) for label, seconds in ranked if seconds >= 0.5]


def own_cpu_seconds() -> float:
    """CPU seconds this process (the producer) used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def receiver_stats(client: httpx.AsyncClient, url: str) -> dict[str, int]:
    """The receiver's counters."""
    reply = await client.get(f"{url}/_stats")
    reply.raise_for_status()
    stats: dict[str, int] = reply.json()
    return stats


async def wait_for_deliveries(
    client: httpx.AsyncClient, url: str, expected: int, patience: float
) -> bool:
    """Wait until the receiver has ``expected`` distinct webhook ids; False when that
    takes more than ``patience`` seconds."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        if (await receiver_stats(client, url))["unique"] >= expected:
            return True
        await asyncio.sleep(POLL_SECONDS)
    return False


async def wait_for_workers(database_url: str, workers: list[ChildProcess]) -> None:
    """Until every worker process has registered (it then listens and claims)."""
    conn = await asyncpg.connect(database_url)
    try:
        await _wait_for_registrations(conn, workers)
    finally:
        await conn.close()


async def _wait_for_registrations(conn: asyncpg.Connection, workers: list[ChildProcess]) -> None:
    """Poll the ``workers`` table until every pid has a live row."""
    pids = [worker.pid for worker in workers]
    deadline = time.monotonic() + WORKER_READY_SECONDS
    while time.monotonic() < deadline:
        for worker in workers:
            worker.check_alive()
        ready = await conn.fetchval(
            "SELECT count(DISTINCT pid) FROM workers WHERE pid = ANY($1::int[])"
            " AND stopped_at IS NULL",
            pids,
        )
        if ready == len(pids):
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the workers did not register within {WORKER_READY_SECONDS:.0f} s")


@dataclass(slots=True)
class PhaseRun:
    """What happened during one phase, before the receiver's arrivals are matched up."""

    name: str
    produced: Produced
    drained: bool
    cpu_before: CpuSnapshot
    cpu_after: CpuSnapshot
    profiles: dict[str, Path] = field(default_factory=dict)


@contextlib.asynccontextmanager
async def py_spy(
    enabled: bool, workers: list[ChildProcess], results_dir: Path, phase: str
) -> AsyncIterator[dict[str, Path]]:
    """Sample each worker with py-spy while the body runs (raw collapsed stacks)."""
    profiles: dict[str, Path] = {}
    spies: list[asyncio.subprocess.Process] = []
    if enabled:
        spy = str(VENV_BIN / "py-spy")
        for worker in workers:
            out = results_dir / f"profile-{phase}-{worker.name}-w{len(workers)}.txt"
            spies.append(
                await asyncio.create_subprocess_exec(
                    spy, "record", "--pid", str(worker.pid), "--rate", "200",
                    "--format", "raw", "--output", str(out),
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
                )
            )  # fmt: skip
            profiles[worker.name] = out
        await asyncio.sleep(1.0)  # py-spy attaches
    try:
        yield profiles
    finally:
        for process in spies:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGINT)
        for process in spies:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(30):
                    await process.wait()


async def run_phase(
    name: str,
    produce: Callable[[], Awaitable[Produced]],
    *,
    client: httpx.AsyncClient,
    receiver_url: str,
    already_delivered: int,
    patience: float,
    meters: Meters,
) -> PhaseRun:
    """Produce one phase's events, then wait for their deliveries, metering CPU."""
    print(f"  {name}: producing", flush=True)
    before = meters.snapshot()
    produced = await produce()
    print(
        f"  {name}: {len(produced.events)} events in {produced.commits} commits,"
        f" {produced.finished - produced.started:.2f} s; waiting for deliveries",
        flush=True,
    )
    expected = already_delivered + len(produced.events)
    drained = await wait_for_deliveries(client, receiver_url, expected, patience)
    after = meters.snapshot()
    if not drained:
        print(f"  {name}: not all delivered after {patience:.0f} s", flush=True)
    return PhaseRun(name, produced, drained, before, after)


async def delivery_outcomes(
    pool: asyncpg.Pool, event_ids: list[str]
) -> tuple[dict[str, int], dict[str, int]]:
    """Delivery rows by status, and attempts by status code (or error), for these events."""
    statuses = await pool.fetch(
        "SELECT status, count(*) AS n FROM webhook_deliveries WHERE event_id = ANY($1::text[])"
        " GROUP BY status",
        event_ids,
    )
    codes = await pool.fetch(
        "SELECT coalesce(a.status_code::text, 'error') AS code, count(*) AS n"
        " FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id"
        " WHERE d.event_id = ANY($1::text[]) GROUP BY 1",
        event_ids,
    )
    return (
        {row["status"]: row["n"] for row in statuses},
        {row["code"]: row["n"] for row in codes},
    )


async def measure(
    config: BenchConfig,
    database_url: str,
    receiver_url: str,
    merchant_id: str,
    payment_id: str,
    workers: list[ChildProcess],
    meters: Meters,
    results_dir: Path,
) -> tuple[list[PhaseRun], dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    """Run the warm-up, burst and rate phases; returns them with the delivery and attempt
    outcomes the database recorded for each."""
    pool = await asyncpg.create_pool(database_url, min_size=PRODUCERS + 1, max_size=PRODUCERS + 1)
    assert pool is not None
    try:
        factory = EventFactory(merchant_id, await load_templates(pool, payment_id))
        delivered = 0
        phases: list[PhaseRun] = []
        async with httpx.AsyncClient(timeout=10) as client:

            async def phase(
                name: str, produce: Callable[[], Awaitable[Produced]], profile: bool = False
            ) -> PhaseRun:
                nonlocal delivered
                async with py_spy(profile, workers, results_dir, name) as profiles:
                    run = await run_phase(
                        name,
                        produce,
                        client=client,
                        receiver_url=receiver_url,
                        already_delivered=delivered,
                        patience=config.timeout,
                        meters=meters,
                    )
                run.profiles = profiles
                delivered += len(run.produced.events)
                return run

            if config.warmup:
                await phase(
                    "warm-up",
                    lambda: produce_at_rate(
                        pool, factory, config.rate, config.warmup, config.per_commit
                    ),
                )
            await asyncio.sleep(1.0)
            phases.append(
                await phase(
                    "burst",
                    lambda: produce_burst(pool, factory, config.events, config.batch),
                    profile=config.profile,
                )
            )
            await asyncio.sleep(1.0)
            phases.append(
                await phase(
                    "rate",
                    lambda: produce_at_rate(
                        pool, factory, config.rate, config.duration, config.per_commit
                    ),
                )
            )
            # Anything still on its way arrives now or counts as missing.
            await asyncio.sleep(1.0)
        statuses: dict[str, dict[str, int]] = {}
        codes: dict[str, dict[str, int]] = {}
        for run in phases:
            statuses[run.name], codes[run.name] = await delivery_outcomes(
                pool, list(run.produced.events)
            )
        return phases, statuses, codes
    finally:
        await pool.close()


# -- analysis ---------------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted ``values``."""
    if not values:
        return float("nan")
    rank = max(1, min(len(values), int(fraction * len(values) + 0.999999)))
    return values[rank - 1]


@dataclass(frozen=True, slots=True)
class PhaseResult:
    """One phase's numbers (latencies in milliseconds, CPU in ms per delivery)."""

    workers: int
    phase: str
    events: int
    commits: int
    produce_s: float
    committed_rate: float
    producer_max_lag_ms: float
    delivered: int
    missing: int
    duplicates: int
    arrival_window_s: float
    delivery_rate: float
    end_to_end_rate: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    p50_from_ack_ms: float
    p99_from_ack_ms: float
    delivery_status: dict[str, int]
    attempt_codes: dict[str, int]
    cpu_ms_per_delivery: dict[str, float]
    machine_busy_pct: float
    other_cpu_s: float
    other_processes: list[tuple[str, float]]
    drained: bool

    @property
    def errors(self) -> int:
        """Undelivered events, duplicates and attempts that did not get a 2xx."""
        non_2xx = sum(n for code, n in self.attempt_codes.items() if not code.startswith("2"))
        return self.missing + self.duplicates + non_2xx


def analyse(
    workers: int,
    run: PhaseRun,
    first_arrivals: dict[str, float],
    dupes: Counter[str],
    statuses: dict[str, int],
    codes: dict[str, int],
) -> PhaseResult:
    """The numbers of one phase: rates, commit-to-delivery percentiles, errors, CPU."""
    events = run.produced.events
    arrivals = [first_arrivals[i] for i in events if i in first_arrivals]
    latencies = sorted(
        (first_arrivals[i] - created) * 1000
        for i, (created, _) in events.items()
        if i in first_arrivals
    )
    from_ack = sorted(
        (first_arrivals[i] - acked) * 1000
        for i, (_, acked) in events.items()
        if i in first_arrivals
    )
    delivered = len(arrivals)
    window = max(arrivals) - min(arrivals) if delivered > 1 else 0.0
    first_commit = min(created for created, _ in events.values())
    end_to_end = max(arrivals) - first_commit if arrivals else 0.0
    seconds = {
        name: run.cpu_after.parts[name] - run.cpu_before.parts[name]
        for name in run.cpu_before.parts
    }
    busy = busy_seconds(run.cpu_before.machine, run.cpu_after.machine)
    return PhaseResult(
        workers=workers,
        phase=run.name,
        events=len(events),
        commits=run.produced.commits,
        produce_s=run.produced.finished - run.produced.started,
        committed_rate=run.produced.committed_rate,
        producer_max_lag_ms=run.produced.max_lag_s * 1000,
        delivered=delivered,
        missing=len(events) - delivered,
        duplicates=sum(dupes[i] for i in events),
        arrival_window_s=window,
        delivery_rate=(delivered - 1) / window if window else 0.0,
        end_to_end_rate=delivered / end_to_end if end_to_end else 0.0,
        p50_ms=percentile(latencies, 0.50),
        p95_ms=percentile(latencies, 0.95),
        p99_ms=percentile(latencies, 0.99),
        max_ms=latencies[-1] if latencies else float("nan"),
        p50_from_ack_ms=percentile(from_ack, 0.50),
        p99_from_ack_ms=percentile(from_ack, 0.99),
        delivery_status=statuses,
        attempt_codes=codes,
        cpu_ms_per_delivery={
            name: value * 1000 / delivered if delivered else 0.0 for name, value in seconds.items()
        },
        machine_busy_pct=busy_percent(run.cpu_before.machine, run.cpu_after.machine),
        other_cpu_s=max(busy - sum(seconds.values()), 0.0),
        other_processes=other_processes(run.cpu_before, run.cpu_after),
        drained=run.drained,
    )


def match_arrivals(arrivals: list[list[Any]]) -> tuple[dict[str, float], Counter[str]]:
    """First arrival per webhook id, and how many extra times each id arrived."""
    first: dict[str, float] = {}
    dupes: Counter[str] = Counter()
    for message_id, arrived in arrivals:
        if message_id in first:
            dupes[message_id] += 1
        else:
            first[message_id] = arrived
    return first, dupes


def per_second(run: PhaseRun, first_arrivals: dict[str, float]) -> list[int]:
    """Deliveries of the phase in each second from its first commit."""
    events = run.produced.events
    if not events:
        return []
    start = min(created for created, _ in events.values())
    counts: Counter[int] = Counter(
        int(first_arrivals[i] - start) for i in events if i in first_arrivals
    )
    return [counts.get(second, 0) for second in range(max(counts, default=-1) + 1)]


# -- one worker count -------------------------------------------------------------------------


def run_with_workers(
    config: BenchConfig, count: int, results_dir: Path
) -> tuple[list[PhaseResult], dict[str, Any]]:
    """Start everything for ``count`` workers, measure, stop everything."""
    if not config.reuse:
        delete_data_dir(config.data_dir, advice=" (use another --data-dir)")
    print(f"\n{count} worker(s): starting the embedded database in {config.data_dir / 'pg'}")
    receiver: ChildProcess | None = None
    workers: list[ChildProcess] = []
    arrivals_path = results_dir / f"arrivals-w{count}.json"
    with embedded_database(config.data_dir) as database_url:
        api = start_api(config)
        try:
            api.wait_ready()
            merchant_id, secret_key = read_demo_merchant(config.data_dir)
            port = free_port()
            receiver_url = f"http://127.0.0.1:{port}"
            payment_id, secret = setup_through_api(api, secret_key, receiver_url)
            receiver = start_receiver(config, port, secret, arrivals_path)
            wait_for_receiver(receiver, receiver_url)
            print(f"  starting {count} paygrid worker process(es)", flush=True)
            start_workers(config, count, database_url, workers)
            database_pid = postmaster_pid(config.data_dir)
            meters = Meters(
                {
                    "workers": lambda: sum(w.cpu_seconds() for w in workers),
                    "postgres": lambda: process_tree_cpu(database_pid),
                    "receiver": receiver.cpu_seconds,
                    "producer": own_cpu_seconds,
                    "api": api.cpu_seconds,
                },
                database_pid,
            )
            phases, statuses, codes = asyncio.run(
                measure(
                    config,
                    database_url,
                    receiver_url,
                    merchant_id,
                    payment_id,
                    workers,
                    meters,
                    results_dir,
                )
            )
        finally:
            exits = {worker.name: worker.stop() for worker in workers}
            if receiver is not None:
                exits["receiver"] = receiver.stop(timeout=120)
            api.stop()
    bad_exits = {name: code for name, code in exits.items() if code not in (0, None)}
    if bad_exits:
        print(f"  warning: processes exited with {bad_exits}; see {config.data_dir / 'logs'}")
    received = json.loads(arrivals_path.read_text())
    first_arrivals, dupes = match_arrivals(received["arrivals"])
    results = [
        analyse(count, run, first_arrivals, dupes, statuses[run.name], codes[run.name])
        for run in phases
    ]
    save_events(results_dir / f"events-w{count}.csv", phases, first_arrivals)
    extra = {
        "signatures": received["signatures"],
        "receiver_connections": received["connections"],
        "receiver_malformed": received["malformed"],
        "requests_received": len(received["arrivals"]),
        "deliveries_per_second": {run.name: per_second(run, first_arrivals) for run in phases},
        "hot_spots": {
            f"{run.name}/{worker}": summarize_raw_profile(path).as_dict()
            for run in phases
            for worker, path in run.profiles.items()
            if path.exists()
        },
        "exit_codes": exits,
    }
    return results, extra


def save_events(path: Path, phases: list[PhaseRun], first_arrivals: dict[str, float]) -> None:
    """One row per event: phase, id, created_at, commit acknowledged, first arrival."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["phase", "event_id", "created_at", "commit_acknowledged", "arrived"])
        for run in phases:
            for event_id, (created, acked) in run.produced.events.items():
                arrived = first_arrivals.get(event_id)
                writer.writerow(
                    [
                        run.name,
                        event_id,
                        f"{created:.6f}",
                        f"{acked:.6f}",
                        "" if arrived is None else f"{arrived:.6f}",
                    ]
                )


# -- report -----------------------------------------------------------------------------------


def report(
    config: BenchConfig,
    version: str,
    results: list[PhaseResult],
    extras: dict[int, dict[str, Any]],
    failures: dict[int, str],
) -> str:
    """The printed report: one row per worker count and phase, then CPU, errors and targets."""
    concurrency = config.concurrency or "paygrid's default"
    lines = [
        f"paygrid {version}",
        f"webhook deliveries to a local receiver: {os.cpu_count()} CPUs, worker concurrency"
        f" {concurrency}, one endpoint subscribed to every event",
        f"burst: {config.events} events, {config.batch} per commit, as fast as possible;"
        f" rate: {config.rate:g} events/s for {config.duration:g} s, {config.per_commit} per"
        " commit",
        "",
        f"{'workers':>7} {'phase':<6} {'events':>7} {'commit/s':>9} {'deliv/s':>8}"
        f" {'e2e/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}"
        f" {'errors':>6}",
    ]
    for r in results:
        lines.append(
            f"{r.workers:>7} {r.phase:<6} {r.events:>7} {r.committed_rate:>9.0f}"
            f" {r.delivery_rate:>8.0f} {r.end_to_end_rate:>8.0f} {r.p50_ms:>8.1f}"
            f" {r.p95_ms:>8.1f} {r.p99_ms:>8.1f} {r.max_ms:>8.1f} {r.errors:>6d}"
        )
    lines += [
        "(commit/s: events committed per second by the producer; deliv/s: deliveries per second"
        " from the first to the last arrival; e2e/s: from the first commit to the last arrival;"
        " latencies: receiver arrival - event created_at; for the burst they are mostly"
        " queueing)",
        "",
        f"{'workers':>7} {'phase':<6} {'CPU ms per delivery:':<21} {'workers':>8} {'postgres':>9}"
        f" {'receiver':>9} {'producer':>9} {'api':>6} {'machine busy':>13} {'other CPU-s':>12}",
    ]
    for r in results:
        cpu = r.cpu_ms_per_delivery
        lines.append(
            f"{r.workers:>7} {r.phase:<6} {'':<21} {cpu['workers']:>8.2f} {cpu['postgres']:>9.2f}"
            f" {cpu['receiver']:>9.2f} {cpu['producer']:>9.2f} {cpu['api']:>6.2f}"
            f" {r.machine_busy_pct:>12.0f}% {r.other_cpu_s:>12.1f}"
        )
    lines.append("")
    for r in results:
        if r.other_processes:
            named = "; ".join(f"{label} ({seconds:.1f} s)" for label, seconds in r.other_processes)
            lines.append(f"{r.workers} worker(s), {r.phase}: other CPU went to {named}")
    for r in results:
        if r.phase == "rate":
            lines.append(
                f"{r.workers} worker(s), rate: commits ran up to {r.producer_max_lag_ms:.0f} ms"
                f" behind schedule; from the commit acknowledgement: p50 {r.p50_from_ack_ms:.1f}"
                f" ms, p99 {r.p99_from_ack_ms:.1f} ms"
            )
        if r.errors or not r.drained:
            lines.append(
                f"{r.workers} worker(s), {r.phase}: {r.missing} undelivered,"
                f" {r.duplicates} duplicates, deliveries {r.delivery_status},"
                f" attempts {r.attempt_codes}"
            )
    for count, extra in extras.items():
        signatures = extra["signatures"]
        lines.append(
            f"{count} worker(s): receiver got {extra['requests_received']} requests on"
            f" {extra['receiver_connections']} connections; signatures verified"
            f" {signatures['verified']}, failed {signatures['failed']}"
        )
        for example in signatures["failure_examples"][:3]:
            lines.append(f"  bad signature: {example}")
    for count, failure in failures.items():
        lines.append(f"{count} worker(s): the run FAILED: {failure}")
    lines += hot_spot_lines(extras, config)
    lines += ["", "targets:"]
    for count in extras:
        burst = next((r for r in results if r.workers == count and r.phase == "burst"), None)
        rate = next((r for r in results if r.workers == count and r.phase == "rate"), None)
        if burst is not None:
            lines.append(
                _target(f"{count}w deliveries/s", f"{burst.delivery_rate:.0f}",
                        f">= {TARGET_RATE:.0f}", burst.delivery_rate >= TARGET_RATE)
            )  # fmt: skip
        if rate is not None:
            at_rate = rate.committed_rate >= 0.95 * TARGET_RATE
            lines.append(
                _target(f"{count}w p99 at {rate.committed_rate:.0f}/s", f"{rate.p99_ms:.0f} ms",
                        f"<= {TARGET_P99_MS:.0f} ms at >= {TARGET_RATE:.0f}/s",
                        at_rate and rate.p99_ms <= TARGET_P99_MS)
            )  # fmt: skip
        errors = sum(
            r.errors + extra_failures(extras[count]) for r in results if r.workers == count
        )
        lines.append(_target(f"{count}w errors", str(errors), "= 0", errors == 0))
    if config.profile:
        lines.append(
            "(profiled run: py-spy sampled the workers during the burst, pausing them for each"
            " sample; its own CPU is in the burst's 'other CPU-s')"
        )
    return "\n".join(lines)


def extra_failures(extra: dict[str, Any]) -> int:
    """Bad signatures and malformed requests the receiver saw."""
    return int(extra["signatures"]["failed"]) + int(extra["receiver_malformed"])


def hot_spot_lines(extras: dict[int, dict[str, Any]], config: BenchConfig) -> list[str]:
    """The py-spy summaries of a profiled run."""
    if not config.profile:
        return []
    lines = []
    for count, extra in extras.items():
        for name, spots in extra["hot_spots"].items():
            lines += ["", f"{count} worker(s), {name}: py-spy hot spots"]
            lines += HotSpots.from_dict(spots).lines()
    return lines


def _target(name: str, value: str, goal: str, met: bool) -> str:
    """One line of the targets list."""
    return target_line(name, value, goal, met, width=22)


def summary(
    config: BenchConfig,
    version: str,
    results: list[PhaseResult],
    extras: dict[int, dict[str, Any]],
    failures: dict[int, str],
) -> dict[str, Any]:
    """Every number (and the configuration), for ``summary.json``."""
    return {
        **summary_header(version, config),
        "results": [{**asdict(r), "errors": r.errors} for r in results],
        "runs": {str(count): extra for count, extra in extras.items()},
        "failures": {str(count): failure for count, failure in failures.items()},
    }


@contextlib.contextmanager
def interrupts_as_exceptions() -> Iterator[None]:
    """SIGTERM ends the run like Ctrl-C, so the finally blocks stop every child."""

    def handler(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    """Run every worker count asked for, print the report and save the raw numbers."""
    config = parse_args(argv)
    warn_if_busy()
    version = code_version()
    label = "-".join(f"w{count}" for count in config.workers)
    results_dir = new_results_dir(f"webhooks-{label}{'-profiled' if config.profile else ''}")
    results: list[PhaseResult] = []
    extras: dict[int, dict[str, Any]] = {}
    failures: dict[int, str] = {}
    with interrupts_as_exceptions():
        for count in config.workers:
            try:
                phase_results, extra = run_with_workers(config, count, results_dir)
            except Exception as failure:  # report it, and what the other counts measured
                failures[count] = f"{type(failure).__name__}: {failure}"
                print(f"  {count} worker(s) failed: {failures[count]}", flush=True)
                continue
            results += phase_results
            extras[count] = extra
    text = report(config, version, results, extras, failures)
    publish(results_dir, text, summary(config, version, results, extras, failures), "raw numbers")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
