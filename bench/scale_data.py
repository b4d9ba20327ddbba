"""Generated payment history for ``bench/scale.py``, loaded in bulk with ``COPY``.

Rows come in chunks of payments with their attempts, events and refunds; a thread generates
the next chunk while four connections copy the current one (one table each), so Python and
PostgreSQL work side by side. Each load spreads its payments over the year in time order,
so index inserts land near each other as the app's do (random order is three times
slower). Ids are the app's: a type prefix and a ULID whose time is the
row's ``created_at`` (encoded here directly, ten times faster than building ``ULID``
objects). Only closed states are generated, so nothing loaded gives the worker work.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

CHUNK = 20_000
PAYMENTS_PER_CUSTOMER = 100
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PAIRS = [a + b for a in CROCKFORD for b in CROCKFORD]  # 10 bits -> two characters
YEAR_MS = 365 * 86_400_000
# (payment status, share in percent): closed states only.
STATUSES = [("succeeded", 82), ("requires_payment_method", 8), ("requires_capture", 4),
            ("canceled", 6)]  # fmt: skip
STATUS_CHOICES = [status for status, share in STATUSES for _ in range(share)]

COLUMNS = {
    "customers": ["id", "merchant_id", "livemode", "email", "created_at"],
    "payments": ["id", "merchant_id", "livemode", "status", "amount", "currency",
                 "capture_method", "amount_capturable", "amount_received", "amount_refunded",
                 "customer_id", "connector", "reference", "created_at", "updated_at"],
    "payment_attempts": ["id", "payment_id", "operation", "connector", "status", "amount",
                         "refund_id", "provider_reference", "latency_ms", "created_at",
                         "completed_at"],
    "events": ["id", "merchant_id", "livemode", "type", "object_id", "data", "created_at",
               "dispatched_at"],
    "refunds": ["id", "merchant_id", "livemode", "payment_id", "amount", "currency", "status",
                "provider_reference", "created_at"],
}  # fmt: skip
Rows = list[tuple[Any, ...]]


def ulid_time(ms: int) -> str:
    """The ten characters of a ULID that encode its millisecond time."""
    return PAIRS[(ms >> 40) & 1023] + PAIRS[(ms >> 30) & 1023] + PAIRS[(ms >> 20) & 1023] + \
        PAIRS[(ms >> 10) & 1023] + PAIRS[ms & 1023]  # fmt: skip


def ulid_random(bits: int) -> str:
    """The sixteen random characters of a ULID, from 80 random bits."""
    return "".join(PAIRS[(bits >> shift) & 1023] for shift in (70, 60, 50, 40, 30, 20, 10, 0))


@dataclass(slots=True)
class Chunk:
    tables: dict[str, Rows] = field(default_factory=lambda: {name: [] for name in COLUMNS})


@dataclass
class Loader:
    """Loads payments (half the demo merchant's, half another merchant's) up to a size."""

    demo_merchant: str
    other_merchant: str = "mer_0SCALEBENCH0THERMERCHANT0"
    loaded: int = 0
    batch: tuple[int, int] = (0, 1)  # (first payment number, payments) of the current load
    customers: dict[str, list[str]] = field(default_factory=dict)
    rng: random.Random = field(default_factory=lambda: random.Random(2026))  # noqa: S311 - data, not secrets
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def demo_customers(self) -> list[str]:
        return self.customers.get(self.demo_merchant, [])

    async def load_to(self, conn: asyncpg.Connection, url: str, size: int) -> None:
        """Add payments until the database holds ``size`` of them (both merchants)."""
        await conn.execute(
            "INSERT INTO merchants (id, name) VALUES ($1, 'Scale bench other merchant')"
            " ON CONFLICT DO NOTHING",
            self.other_merchant,
        )
        copiers = [await _copy_connection(url) for _ in COLUMNS]
        self.batch = (self.loaded, max(size - self.loaded, 1))
        try:
            customers = self._new_customers(size)
            await copiers[0].copy_records_to_table(
                "customers", records=customers, columns=COLUMNS["customers"]
            )
            pending = asyncio.create_task(asyncio.to_thread(self._chunk, size))
            while chunk := await pending:
                pending = asyncio.create_task(asyncio.to_thread(self._chunk, size))
                await asyncio.gather(
                    *(
                        copier.copy_records_to_table(table, records=rows, columns=COLUMNS[table])
                        for copier, (table, rows) in zip(copiers, chunk.tables.items(), strict=True)
                        if rows
                    )
                )
                print(f"    {self.loaded:,} payments", flush=True)
        finally:
            for copier in copiers:
                await copier.close()

    def _new_customers(self, size: int) -> Rows:
        rows: Rows = []
        for merchant in (self.demo_merchant, self.other_merchant):
            have = self.customers.setdefault(merchant, [])
            while len(have) < max(size // PAYMENTS_PER_CUSTOMER // 2, 10):
                at = self._time()
                customer_id = f"cus_{ulid_time(at)}{self._random()}"
                have.append(customer_id)
                rows.append((customer_id, merchant, False, f"{customer_id.lower()}@example.com",
                             _datetime(at)))  # fmt: skip
        return rows

    def _chunk(self, size: int) -> Chunk | None:
        count = min(CHUNK, size - self.loaded)
        if count <= 0:
            return None
        chunk = Chunk()
        for n in range(self.loaded, self.loaded + count):
            merchant = self.demo_merchant if n % 2 == 0 else self.other_merchant
            self._payment(chunk.tables, merchant, self._time_of(n))
        self.loaded += count
        return chunk

    def _payment(self, tables: dict[str, Rows], merchant: str, ms: int) -> None:
        rng = self.rng
        at, stamp = _datetime(ms), ulid_time(ms)
        later = at + timedelta(milliseconds=rng.randint(300, 1500))
        pay_id, status = f"pay_{stamp}{self._random()}", rng.choice(STATUS_CHOICES)
        amount = rng.randint(100, 90_000)
        received = amount if status == "succeeded" else 0
        refunded = amount if received and rng.random() < 0.05 else 0
        customer = rng.choice(self.customers[merchant]) if rng.random() < 0.7 else None
        tables["payments"].append(
            (pay_id, merchant, False, status, amount, "USD", "automatic",
             amount if status == "requires_capture" else 0, received, refunded, customer,
             "simulator", f"ord_{stamp}{self._random()}", at, later)
        )  # fmt: skip
        attempts, events = tables["payment_attempts"], tables["events"]
        if status != "succeeded" or rng.random() < 0.3:
            attempts.append(self._attempt(stamp, pay_id, "declined", amount, at))
        if status in ("succeeded", "requires_capture"):
            outcome = "succeeded" if received else "authorized"
            attempts.append(self._attempt(stamp, pay_id, outcome, amount, later))
        events.append(self._event(stamp, merchant, "payment.created", pay_id, status, at))
        outcome_event = {"succeeded": "payment.succeeded", "canceled": "payment.canceled",
                         "requires_capture": "payment.requires_capture"}  # fmt: skip
        kind = outcome_event.get(status, "payment.payment_failed")
        events.append(self._event(stamp, merchant, kind, pay_id, status, later))
        if refunded:
            self._refund(tables, merchant, pay_id, refunded, later + timedelta(days=1))

    def _refund(
        self, tables: dict[str, Rows], merchant: str, pay_id: str, amount: int, at: datetime
    ) -> None:
        stamp = ulid_time(int(at.timestamp() * 1000))
        refund_id = f"re_{stamp}{self._random()}"
        tables["refunds"].append(
            (refund_id, merchant, False, pay_id, amount, "USD", "succeeded",
             f"sim_re_{self._random()}", at)
        )  # fmt: skip
        attempt = self._attempt(stamp, pay_id, "succeeded", amount, at, refund_id=refund_id)
        tables["payment_attempts"].append(attempt)
        tables["events"].append(
            self._event(stamp, merchant, "refund.succeeded", refund_id, "succeeded", at)
        )

    def _attempt(
        self, stamp: str, pay_id: str, status: str, amount: int, at: datetime,
        refund_id: str | None = None,
    ) -> tuple[Any, ...]:  # fmt: skip
        operation = "refund" if refund_id else "authorize"
        return (f"att_{stamp}{self._random()}", pay_id, operation, "simulator", status, amount,
                refund_id, f"sim_{self._random()}", self.rng.randint(20, 400), at, at)  # fmt: skip

    def _event(
        self, stamp: str, merchant: str, kind: str, object_id: str, status: str, at: datetime
    ) -> tuple[Any, ...]:
        kind_of = "refund" if object_id.startswith("re_") else "payment"
        data = (f'{{"object": {{"id": "{object_id}", "object": "{kind_of}",'
                f' "status": "{status}", "currency": "usd", "livemode": false}}}}')  # fmt: skip
        return (f"evt_{stamp}{self._random()}", merchant, False, kind, object_id, data, at, at)

    def _time_of(self, n: int) -> int:
        """Payment ``n``'s millisecond: the current load's payments in time order."""
        first, count = self.batch
        offset = int((n - first + self.rng.random()) * YEAR_MS / count)
        return int(self.now.timestamp() * 1000) - YEAR_MS + min(offset, YEAR_MS - 1)

    def _time(self) -> int:
        """A random millisecond of the last 365 days."""
        return int(self.now.timestamp() * 1000) - self.rng.randrange(YEAR_MS)

    def _random(self) -> str:
        return ulid_random(self.rng.getrandbits(80))


def _datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


async def _copy_connection(url: str) -> asyncpg.Connection:
    """A plain connection (jsonb as text) that skips triggers and foreign-key checks."""
    conn = await asyncpg.connect(url)
    await conn.execute("SET session_replication_role = replica")
    return conn
