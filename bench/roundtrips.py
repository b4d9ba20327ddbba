"""Count the SQL round trips of one ``POST /v1/payments`` (confirm, success card).

Starts paygrid on a scratch embedded database (``.paygrid/bench-roundtrips``) with statement
logging on (``log_min_duration_statement = 0``, which logs every parse, bind and execute),
sends warm-up payments so that every pooled connection has its statements prepared, then
sends one more and prints the statements PostgreSQL logged for it, in order.

A round trip is one exchange the client waits for: an ``execute`` (asyncpg sends Bind and
Execute together), a simple-protocol ``statement`` (BEGIN, COMMIT), or a ``parse`` (asyncpg
prepares a statement it has not cached yet, before executing it). The pool is limited to
two connections so the warm-up reaches all of them.

Usage: ``.venv/bin/python bench/roundtrips.py [--warmup 8]``
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from pathlib import Path

import asyncpg
import httpx
from demo_server import pay, read_demo_merchant, start_demo_server
from embedded_database import embedded_database
from processes import REPO_ROOT

LOG_ENTRY = re.compile(
    r"LOG:  duration: [0-9.]+ ms  (?:(?P<phase>parse|bind|execute) [^:]+|statement): (?P<sql>.*)"
)
LOGGING_ON = (
    "ALTER SYSTEM SET log_min_duration_statement = 0",
    "ALTER SYSTEM SET log_line_prefix = '%m [%p] '",
)
LOGGING_OFF = (
    "ALTER SYSTEM RESET log_min_duration_statement",
    "ALTER SYSTEM RESET log_line_prefix",
)


async def configure(url: str, statements: tuple[str, ...]) -> None:
    conn = await asyncpg.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()


def round_trips(log_text: str) -> list[tuple[str, str]]:
    """(kind, SQL) for each round trip in a PostgreSQL log excerpt; binds are folded into
    their execute."""
    trips = []
    for line in log_text.splitlines():
        match = LOG_ENTRY.search(line)
        if match is None or match["phase"] == "bind":
            continue
        trips.append((match["phase"] or "statement", match["sql"].strip()))
    return trips


def commits(trips: list[tuple[str, str]]) -> int:
    """Statements that commit: each one outside an explicit transaction, and each COMMIT
    (the connections are not told apart: the counted payment's statements run one after
    another)."""
    count, in_transaction = 0, False
    for kind, sql in trips:
        verb = sql.split(None, 1)[0].upper().rstrip(";") if sql else ""
        if kind == "parse":
            continue
        if verb in ("BEGIN", "START"):
            in_transaction = True
        elif verb in ("COMMIT", "END", "ROLLBACK"):
            in_transaction = False
            count += verb != "ROLLBACK"
        elif not in_transaction:
            count += 1
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warmup", type=int, default=8, help="payments before the counted one")
    args = parser.parse_args()
    data_dir = REPO_ROOT / ".paygrid" / "bench-roundtrips"
    log_path = Path(data_dir / "pg" / "log")
    with embedded_database(data_dir) as url:
        try:
            asyncio.run(configure(url, LOGGING_ON))
            # No in-process worker: it would hold connections of this deliberately small pool,
            # and only the request's own statements are to be counted.
            server = start_demo_server(
                "paygrid-roundtrips",
                data_dir,
                PAYGRID_DB_POOL_SIZE="2",
                PAYGRID_WORKER_IN_PROCESS="false",
            )
            try:
                server.wait_ready()
                _, secret_key = read_demo_merchant(data_dir)
                with httpx.Client(timeout=10) as client:
                    for _ in range(args.warmup):
                        pay(client, server.base_url, secret_key, "roundtrips")
                    time.sleep(0.5)
                    offset = log_path.stat().st_size
                    pay(client, server.base_url, secret_key, "roundtrips")
                    time.sleep(0.5)
                    # Read before stopping: the shutdown's own statements (UNLISTEN) are
                    # not the payment's.
                    with log_path.open("rb") as log:
                        log.seek(offset)
                        excerpt = log.read().decode(errors="replace")
            finally:
                server.stop()
        finally:
            asyncio.run(configure(url, LOGGING_OFF))
    trips = round_trips(excerpt)
    for number, (kind, sql) in enumerate(trips, start=1):
        print(f"{number:3d}  {kind:<9}  {sql[:110]}")
    kinds = {kind: sum(1 for k, _ in trips if k == kind) for kind in ("execute", "statement")}
    parses = sum(1 for k, _ in trips if k == "parse")
    print(
        f"\n{len(trips)} round trips: {kinds['execute']} extended-protocol executes,"
        f" {kinds['statement']} simple statements (BEGIN/COMMIT), {parses} parses"
    )
    print(f"{commits(trips)} commits")
    return 0


if __name__ == "__main__":
    sys.exit(main())
