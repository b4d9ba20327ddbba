"""Benchmark ``POST /v1/payments`` against a minimal reference endpoint.

Starts paygrid (``paygrid serve --demo``) on the embedded database and drives
``POST /v1/payments`` with ``confirm: true``, the success card and a fresh Idempotency-Key per
request (``bench/payments.lua``) with ``wrk``: 64 connections for 20 s by default. Then, in
the same run and against the same database, it drives ``bench/reference_app.py``, which does
only the same SQL writes in one transaction, with the same worker count and load. It prints
requests/s, p50/p95/p99, errors, the CPU each side used per request, and paygrid's rate as a
ratio of the reference's.

The CPU columns are CPU time per request of the server process tree, of PostgreSQL (the
postmaster and its children) and of wrk, measured over the timed run. The machine is shared
with whatever else runs on it, so the report also says how much CPU went to anything else
during each run: a large share there means the numbers are not trustworthy.

Each target gets an untimed warm-up run first (``--warmup``, default 3 s; 0 disables it) so
that both are measured with warm connection pools and prepared-statement caches.

The load generator is ``wrk`` (not Python). The script does not install it: when it is
missing it exits with the command to install it (Debian/Ubuntu: ``apt-get install -y wrk``).

With ``--rate N`` it instead measures latency at a fixed offered load: an open-loop
generator (``bench/open_loop.py``, asyncio, fixed arrival times, latency counted from each
request's scheduled time as wrk2 does) sends N payments a second to paygrid alone for
``--duration`` seconds after the warm-up at the same rate, and reports p50/p95/p99 (target:
p99 <= 30 ms at 150 payments/s). wrk is not needed then.

Usage::

    .venv/bin/python bench/payments.py [--duration 20] [--connections 64] [--workers 1]
                                       [--threads 2] [--warmup 3] [--data-dir .paygrid/bench]
                                       [--fresh] [--rate N]

Raw wrk output and a JSON summary go to ``bench/results/`` (gitignored); server logs go to
``<data dir>/logs/``. The embedded PostgreSQL is stopped at the end unless another paygrid
process still uses the same data directory.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import open_loop
import psutil
from demo_server import read_demo_merchant, start_demo_server
from embedded_database import delete_data_dir, embedded_database, postmaster_pid
from processes import (
    BENCH_DIR,
    REPO_ROOT,
    ServerProcess,
    busy_percent,
    busy_seconds,
    clean_environment,
    free_port,
    process_tree_cpu,
    warn_if_busy,
)
from run_results import code_version, new_results_dir, publish, summary_header, target_line

LUA_SCRIPT = BENCH_DIR / "payments.lua"

# Issue 2's absolute figures (blocked on this machine: bench/README.md), then issue 12 §2's
# rate relative to the reference and CPU per confirmed payment (paygrid + PostgreSQL).
TARGET_RATE = 1000.0
TARGET_P99_MS = 50.0
TARGET_RATIO = 0.9
TARGET_CPU_MS = 3.5
TARGET_OPEN_LOOP_P99_MS = 30.0

WRK_MISSING = """\
wrk is not installed (bench/payments.py uses it as the load generator).
Install it, then run the benchmark again:
  Debian/Ubuntu:  sudo apt-get update && sudo apt-get install -y wrk
  macOS:          brew install wrk
  from source:    git clone of wg/wrk, then `make` and put ./wrk on PATH"""


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What one wrk run measured (latencies in milliseconds)."""

    target: str
    requests: int
    duration_s: float
    non_2xx: int
    not_succeeded: int
    socket_errors: int
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    server_cpu_s: float
    database_cpu_s: float
    wrk_cpu_s: float
    machine_busy_pct: float
    machine_busy_s: float

    @property
    def other_cpu_s(self) -> float:
        """CPU the machine spent on anything but this server, PostgreSQL and wrk."""
        return max(
            self.machine_busy_s - self.server_cpu_s - self.database_cpu_s - self.wrk_cpu_s, 0.0
        )

    @property
    def rate(self) -> float:
        """All completed requests per second."""
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def errors(self) -> int:
        return self.non_2xx + self.not_succeeded + self.socket_errors

    @property
    def ok_rate(self) -> float:
        """Successful payments (200 with status succeeded) per second."""
        ok = max(self.requests - self.non_2xx - self.not_succeeded, 0)
        return ok / self.duration_s if self.duration_s else 0.0

    def cpu_ms_per_request(self, seconds: float) -> float:
        return seconds * 1000 / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True)
class BenchConfig:
    duration: int
    connections: int
    workers: int
    threads: int
    warmup: int
    data_dir: Path
    fresh: bool
    rate: float | None = None
    reference_commits: int = 1
    reference_shape: str = "transactions"


def parse_args(argv: list[str] | None = None) -> BenchConfig:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds per target (20)")
    parser.add_argument("--connections", type=int, default=64, help="open connections (64)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers per server (1)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument(
        "--warmup", type=int, default=3, help="untimed seconds before each measured run (3)"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=REPO_ROOT / ".paygrid" / "bench",
        help="embedded database directory (.paygrid/bench)",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="delete the data directory first (each run adds tens of thousands of payments)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="open loop: payments per second at fixed arrival times, paygrid only",
    )
    parser.add_argument(
        "--reference-commits",
        type=int,
        choices=(1, 3),
        default=1,
        help="the reference's writes in 1 transaction (the floor, default) or in paygrid's 3",
    )
    parser.add_argument(
        "--reference-shape",
        choices=("transactions", "statements"),
        default="transactions",
        help="with 3 commits: each a transaction of its statements (default), or each one"
        " statement with the charge not waiting for the WAL flush, as paygrid commits them",
    )
    args = parser.parse_args(argv)
    if min(args.duration, args.connections, args.workers, args.threads) < 1 or args.warmup < 0:
        parser.error("durations, connections, workers and threads must be positive")
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be positive")
    if args.threads > args.connections:
        parser.error("wrk needs at least one connection per thread")
    return BenchConfig(
        duration=args.duration,
        connections=args.connections,
        workers=args.workers,
        threads=args.threads,
        warmup=args.warmup,
        data_dir=args.data_dir.resolve(),
        fresh=args.fresh,
        rate=args.rate,
        reference_commits=args.reference_commits,
        reference_shape=args.reference_shape,
    )


def require_wrk() -> str:
    """The wrk executable, or exit with instructions to install it."""
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit(WRK_MISSING)
    return wrk


@contextlib.contextmanager
def running(server: ServerProcess) -> Iterator[ServerProcess]:
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def start_paygrid(config: BenchConfig) -> ServerProcess:
    return start_demo_server("paygrid", config.data_dir, PAYGRID_HTTP_WORKERS=str(config.workers))


def start_reference(config: BenchConfig, database_url: str, merchant_id: str) -> ServerProcess:
    port = free_port()
    env = clean_environment()
    env.update(
        BENCH_DATABASE_URL=database_url,
        BENCH_MERCHANT_ID=merchant_id,
        BENCH_REFERENCE_COMMITS=str(config.reference_commits),
        BENCH_REFERENCE_SHAPE=config.reference_shape,
    )
    src = str(REPO_ROOT / "src")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(BENCH_DIR),
        "reference_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(config.workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return ServerProcess("reference", command, env, port, config.data_dir / "logs")


def parse_wrk_output(target: str, output: str) -> dict[str, float]:
    """The key=value pairs of the ``bench_result`` line printed by payments.lua's done()."""
    for line in output.splitlines():
        if line.startswith("bench_result "):
            return {
                key: float(value)
                for key, value in (item.split("=", 1) for item in line.split()[1:])
            }
    raise RuntimeError(f"wrk printed no bench_result line for {target}:\n{output}")


def run_wrk(
    wrk: str, config: BenchConfig, url: str, secret_key: str, seconds: int
) -> tuple[str, float]:
    """Run wrk against ``url``; returns its output and the CPU seconds wrk itself used."""
    command = [
        wrk,
        f"--threads={config.threads}",
        f"--connections={config.connections}",
        f"--duration={seconds}s",
        "--timeout=10s",
        "--latency",
        f"--script={LUA_SCRIPT}",
        url,
        "--",
        uuid.uuid4().hex[:12],
        secret_key,
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    completed = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - our own argv
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0:
        raise RuntimeError(f"wrk failed ({completed.returncode}):\n{completed.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return completed.stdout, cpu


def measure(
    wrk: str,
    config: BenchConfig,
    server: ServerProcess,
    secret_key: str,
    results_dir: Path,
) -> LoadResult:
    """Warm up, then run the measured wrk load against one server."""
    url = f"{server.base_url}/v1/payments"
    if config.warmup:
        print(f"  {server.name}: warm-up {config.warmup} s", flush=True)
        run_wrk(wrk, config, url, secret_key, config.warmup)
    print(f"  {server.name}: measuring {config.duration} s", flush=True)
    database_pid = postmaster_pid(config.data_dir)
    server_cpu, database_cpu = server.cpu_seconds(), process_tree_cpu(database_pid)
    machine_before = psutil.cpu_times()
    output, wrk_cpu = run_wrk(wrk, config, url, secret_key, config.duration)
    machine_after = psutil.cpu_times()
    machine_busy = busy_percent(machine_before, machine_after)
    machine_busy_s = busy_seconds(machine_before, machine_after)
    server_cpu = server.cpu_seconds() - server_cpu
    database_cpu = process_tree_cpu(database_pid) - database_cpu
    (results_dir / f"{server.name}.wrk.txt").write_text(output)
    values = parse_wrk_output(server.name, output)
    return LoadResult(
        target=server.name,
        requests=int(values["requests"]),
        duration_s=values["duration_us"] / 1e6,
        non_2xx=int(values["non_2xx"]),
        not_succeeded=int(values["not_succeeded"]),
        socket_errors=int(
            values["connect_errors"]
            + values["read_errors"]
            + values["write_errors"]
            + values["timeouts"]
        ),
        p50_ms=values["p50_us"] / 1000,
        p75_ms=values["p75_us"] / 1000,
        p90_ms=values["p90_us"] / 1000,
        p95_ms=values["p95_us"] / 1000,
        p99_ms=values["p99_us"] / 1000,
        max_ms=values["max_us"] / 1000,
        server_cpu_s=server_cpu,
        database_cpu_s=database_cpu,
        wrk_cpu_s=wrk_cpu,
        machine_busy_pct=machine_busy,
        machine_busy_s=machine_busy_s,
    )


def report(config: BenchConfig, version: str, paygrid: LoadResult, reference: LoadResult) -> str:
    """The results table, the ratio and the targets."""
    ratio = paygrid.ok_rate / reference.ok_rate if reference.ok_rate else 0.0
    cpu_ms = paygrid.cpu_ms_per_request(paygrid.server_cpu_s + paygrid.database_cpu_s)
    lines = [
        f"paygrid {version}",
        f"POST /v1/payments (confirm, success card, fresh Idempotency-Key): "
        f"{config.connections} connections, {config.duration} s, {config.workers} worker(s), "
        f"wrk {config.threads} thread(s), {os.cpu_count()} CPUs",
        "",
        f"{'target':<10} {'req/s':>9} {'ok/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
        f" {'max ms':>8} {'errors':>7} {'app CPU':>8} {'db CPU':>8} {'wrk CPU':>8}",
    ]
    for result in (paygrid, reference):
        lines.append(
            f"{result.target:<10} {result.rate:>9.1f} {result.ok_rate:>9.1f}"
            f" {result.p50_ms:>8.2f} {result.p95_ms:>8.2f} {result.p99_ms:>8.2f}"
            f" {result.max_ms:>8.2f} {result.errors:>7d}"
            f" {result.cpu_ms_per_request(result.server_cpu_s):>6.2f}ms"
            f" {result.cpu_ms_per_request(result.database_cpu_s):>6.2f}ms"
            f" {result.cpu_ms_per_request(result.wrk_cpu_s):>6.2f}ms"
        )
    lines.append("(CPU columns: CPU time per request of the server, PostgreSQL and wrk)")
    for result in (paygrid, reference):
        lines.append(
            f"machine CPU during the {result.target} run: {result.machine_busy_pct:.0f}% busy,"
            f" of which {result.other_cpu_s:.1f} CPU-s ({_share(result):.0f}%) was neither the"
            " server, PostgreSQL nor wrk"
        )
    for result in (paygrid, reference):
        if result.errors:
            lines.append(
                f"{result.target} errors: {result.non_2xx} non-2xx, {result.not_succeeded}"
                f" 2xx without status succeeded, {result.socket_errors} socket errors/timeouts"
            )
    lines += [
        "",
        f"ratio (paygrid ok/s / reference ok/s): {ratio:.3f}",
        "",
        "targets:",
        _target("payments/s", f"{paygrid.ok_rate:.0f}", f">= {TARGET_RATE:.0f}",
                paygrid.ok_rate >= TARGET_RATE),
        _target("p99", f"{paygrid.p99_ms:.1f} ms", f"<= {TARGET_P99_MS:.0f} ms",
                paygrid.p99_ms <= TARGET_P99_MS),
        _target("ratio", f"{ratio:.3f}", f">= {TARGET_RATIO}", ratio >= TARGET_RATIO),
        _target("CPU/payment", f"{cpu_ms:.2f} ms", f"<= {TARGET_CPU_MS} ms (app + PostgreSQL)",
                cpu_ms <= TARGET_CPU_MS),
        _target("errors", str(paygrid.errors), "= 0", paygrid.errors == 0),
    ]  # fmt: skip
    return "\n".join(lines)


def _share(result: LoadResult) -> float:
    return 100 * result.other_cpu_s / result.machine_busy_s if result.machine_busy_s else 0.0


def _target(name: str, value: str, goal: str, met: bool) -> str:
    """One line of the targets list."""
    return target_line(name, value, goal, met, width=11)


def summary(
    config: BenchConfig, version: str, paygrid: LoadResult, reference: LoadResult
) -> dict[str, Any]:
    """Every number (and the configuration), for ``summary.json``."""
    return {
        **summary_header(version, config),
        "results": {
            result.target: {**asdict(result), "rate": result.rate, "ok_rate": result.ok_rate}
            for result in (paygrid, reference)
        },
        "ratio": paygrid.ok_rate / reference.ok_rate if reference.ok_rate else 0.0,
    }


def measure_rate(config: BenchConfig, rate: float) -> int:
    """The ``--rate`` run: warm up, then one open-loop run against paygrid."""
    warn_if_busy()
    version = code_version()
    results_dir = new_results_dir(f"w{config.workers}-rate{rate:g}")
    if config.fresh:
        delete_data_dir(config.data_dir, prefix="--fresh: ")
    with embedded_database(config.data_dir), running(start_paygrid(config)) as server:
        _, secret_key = read_demo_merchant(config.data_dir)
        if config.warmup:
            print(f"  warm-up {config.warmup} s at {rate:g}/s", flush=True)
            open_loop.run(server.base_url, secret_key, rate, config.warmup)
        print(f"  measuring {config.duration} s at {rate:g}/s", flush=True)
        database_pid = postmaster_pid(config.data_dir)
        server_cpu, database_cpu = server.cpu_seconds(), process_tree_cpu(database_pid)
        client_cpu, machine_before = _own_cpu(), psutil.cpu_times()
        result = open_loop.run(server.base_url, secret_key, rate, config.duration)
        machine_busy = busy_percent(machine_before, psutil.cpu_times())
        cpu_ms = [
            (seconds * 1000 / result.sent if result.sent else 0.0)
            for seconds in (
                server.cpu_seconds() - server_cpu,
                process_tree_cpu(database_pid) - database_cpu,
                _own_cpu() - client_cpu,
            )
        ]
    text = "\n".join(
        [
            f"paygrid {version}",
            f"POST /v1/payments (confirm, success card), open loop at {rate:g}/s for"
            f" {config.duration} s, {config.workers} worker(s), {os.cpu_count()} CPUs",
            "",
            f"{'sent':>6} {'ok/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}"
            f" {'errors':>7} {'send lag ms':>12}",
            f"{result.sent:>6} {result.ok_rate:>7.1f} {result.p50_ms:>8.2f}"
            f" {result.p95_ms:>8.2f} {result.p99_ms:>8.2f} {result.max_ms:>8.2f}"
            f" {result.errors:>7} {result.max_send_lag_ms:>12.1f}",
            "(latency from each request's scheduled send time; send lag: how late the"
            " generator was at worst)",
            f"CPU per payment: paygrid {cpu_ms[0]:.2f} ms, PostgreSQL {cpu_ms[1]:.2f} ms,"
            f" load generator {cpu_ms[2]:.2f} ms; all CPUs {machine_busy:.0f}% busy",
            "requests slower than p99, by second of the run: "
            + (", ".join(f"{at}s: {n}" for at, n in result.slow_by_second.items()) or "none"),
            "",
            "targets:",
            _target("p99", f"{result.p99_ms:.1f} ms", f"<= {TARGET_OPEN_LOOP_P99_MS:.0f} ms",
                    result.p99_ms <= TARGET_OPEN_LOOP_P99_MS),
            _target("errors", str(result.errors), "= 0", result.errors == 0),
        ]
        + ([f"errors: {result.error_kinds}"] if result.errors else [])
    )  # fmt: skip
    summary = {
        **summary_header(version, config),
        "open_loop": asdict(result),
        "cpu_ms_per_payment": dict(zip(("paygrid", "database", "client"), cpu_ms, strict=True)),
        "machine_busy_pct": machine_busy,
    }
    publish(results_dir, text, summary, "summary")
    return 0


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    if config.rate is not None:
        return measure_rate(config, config.rate)
    wrk = require_wrk()
    warn_if_busy()
    version = code_version()
    results_dir = new_results_dir(f"w{config.workers}-c{config.connections}")
    if config.fresh:
        delete_data_dir(config.data_dir, prefix="--fresh: ")
    print(f"starting the embedded database in {config.data_dir / 'pg'}", flush=True)
    with embedded_database(config.data_dir) as database_url:
        print(f"starting paygrid ({config.workers} worker(s))", flush=True)
        with running(start_paygrid(config)) as server:
            merchant_id, secret_key = read_demo_merchant(config.data_dir)
            paygrid = measure(wrk, config, server, secret_key, results_dir)
        print(
            f"starting the reference ({config.workers} worker(s),"
            f" {config.reference_commits} transaction(s) per payment"
            + (", each one statement" if config.reference_shape == "statements" else "")
            + ")",
            flush=True,
        )
        with running(start_reference(config, database_url, merchant_id)) as server:
            reference = measure(wrk, config, server, secret_key, results_dir)
    text = report(config, version, paygrid, reference)
    publish(
        results_dir,
        text,
        summary(config, version, paygrid, reference),
        "raw wrk output and summary",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
