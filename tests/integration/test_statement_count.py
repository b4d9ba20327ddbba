"""The SQL cost of one confirmed payment, counted (not timed): every statement the app sends
for ``POST /v1/payments`` with ``confirm: true`` and an idempotency key, on pools whose
connections log each query. Issue 12 set the ceiling at 6 round trips and 3 commits (it was
10 and 10); this test keeps the count from creeping back up."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest

from paygrid.app import create_app
from paygrid.bootstrap import build_deps
from paygrid.config import Settings
from paygrid.db import engine
from paygrid.db.executor import Connection
from paygrid.db.listener import Notifications
from paygrid.services import lookup_invalidation
from paygrid.services.merchants import create_merchant
from tests.conftest import SUCCESS_CARD, TEST_BASE_URL, auth, card, close_or_fail

MAX_ROUND_TRIPS = 6
MAX_COMMITS = 3
# What bench/payments.lua sends: card data, confirmed at once.
PAYMENT = {
    "amount": 2000,
    "currency": "USD",
    "confirm": True,
    "payment_method_data": card(SUCCESS_CARD),
}


@dataclass
class StatementLog:
    """Every query sent, per connection, and the commits they made: a statement outside an
    explicit transaction commits on its own; inside one, its COMMIT does."""

    recording: bool = False
    statements: list[str] = field(default_factory=list)
    commits: int = 0
    _in_transaction: dict[int, bool] = field(default_factory=dict)

    def record(self, connection: int, query: str) -> None:
        verb = query.lstrip().split(None, 1)[0].upper().rstrip(";") if query.strip() else ""
        if verb in ("BEGIN", "START"):
            self._in_transaction[connection] = True
        elif verb in ("COMMIT", "ROLLBACK", "END"):
            self._in_transaction[connection] = False
        if not self.recording:
            return
        self.statements.append(query)
        if verb == "COMMIT" or (
            verb not in ("BEGIN", "START", "ROLLBACK") and not self._in_transaction.get(connection)
        ):
            self.commits += 1


async def logging_pool(url: str, size: int, log: StatementLog, *, durable: bool) -> asyncpg.Pool:
    kwargs: dict[str, Any] = engine.pool_kwargs(size, durable=durable)
    init = kwargs["init"]

    async def init_and_log(conn: Connection) -> None:
        await init(conn)
        key = id(conn)
        conn.add_query_logger(lambda entry: log.record(key, entry.query))

    kwargs["init"] = init_and_log
    pool = await asyncpg.create_pool(url, **kwargs)
    assert pool is not None
    return pool


@pytest.fixture
async def counted(
    database_url: str, settings: Settings
) -> AsyncIterator[tuple[httpx.AsyncClient, StatementLog]]:
    log = StatementLog()
    main = await logging_pool(database_url, 4, log, durable=True)
    bookkeeping = await logging_pool(database_url, 4, log, durable=False)
    deps = build_deps(main, settings, bookkeeping_pool=bookkeeping)
    # As `paygrid serve` does: the key and routing caches answer while their LISTEN is up.
    notifications = Notifications(main)
    await notifications.start()
    listener = await lookup_invalidation.listen(deps.lookups, notifications)
    transport = httpx.ASGITransport(app=create_app(settings, deps=deps), raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL) as http:
            yield http, log
    finally:
        await listener.stop()
        await notifications.stop()
        await deps.connectors.aclose()
        await close_or_fail(main, "counted main")
        await close_or_fail(bookkeeping, "counted bookkeeping")


async def test_one_confirmed_payment_stays_within_the_statement_budget(
    counted: tuple[httpx.AsyncClient, StatementLog], pool: asyncpg.Pool
) -> None:
    http, log = counted
    merchant = await create_merchant(pool, f"Counted {uuid.uuid4().hex[:6]}")
    headers = auth(merchant.key("secret", livemode=False))
    # Warm up: caches (the key, the routing inputs) and each connection's prepared statements.
    for _ in range(6):
        warm = await http.post(
            "/v1/payments",
            json=PAYMENT,
            headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert warm.status_code == 200, warm.text
    log.recording = True
    response = await http.post(
        "/v1/payments",
        json=PAYMENT,
        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    log.recording = False
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "succeeded"
    listing = "\n".join(f"  {i + 1}. {q[:110]}" for i, q in enumerate(log.statements))
    assert len(log.statements) <= MAX_ROUND_TRIPS, f"{len(log.statements)} round trips:\n{listing}"
    assert log.commits <= MAX_COMMITS, f"{log.commits} commits:\n{listing}"
    # And the work is all there: the payment, its attempt, its events, the stored answer.
    payment_id = response.json()["id"]
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM payment_attempts WHERE payment_id = $1", payment_id
        )
        == 1
    )
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM events WHERE data->'object'->>'id' = $1", payment_id
        )
        == 2
    )
    # Who acted is still recorded, though no session setting was written for it: the
    # statements carry the audit context themselves.
    audited = await pool.fetch(
        "SELECT actor, request_id FROM audit_log WHERE object_id = $1", payment_id
    )
    key_id = next(k.id for k in merchant.keys if k.kind == "secret" and not k.livemode)
    assert len(audited) == 2
    assert {(r["actor"], r["request_id"]) for r in audited} == {
        (f"api_key:{key_id}", response.headers["x-request-id"])
    }
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM idempotency_keys WHERE merchant_id = $1 AND response_status = 200",
            merchant.id,
        )
        == 7
    )
