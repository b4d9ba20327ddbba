"""Every query the API and the dashboard issue is planned without a sequential scan over the
tables that grow with traffic (payments, attempts, events, refunds, audit rows).

A scratch database is seeded in bulk (``COPY``) with two merchants' year of payments, so
the planner has real statistics and chooses honestly (no ``enable_seqscan = off``, which
would hide a missing index). The read paths, and a confirm and a refund, then run through
the in-process app while every statement its pool sends is captured with its arguments;
each is then explained (``EXPLAIN (FORMAT JSON)``, never executed) and its plan walked.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from asyncpg.connection import LoggedQuery
from ulid import ULID

from paygrid.app import create_app
from paygrid.bootstrap import build_deps
from paygrid.clock import SYSTEM_CLOCK
from paygrid.config import Settings
from paygrid.db import engine
from paygrid.domain import scopes
from paygrid.services.dashboard_users import create_user
from paygrid.services.merchants import NewMerchant, create_merchant, issue_key
from tests.conftest import TEST_BASE_URL, auth, confirmed_payment, scratch_database
from tests.integration.test_dashboard import PASSWORD, sign_in

GROWING = frozenset({"payments", "payment_attempts", "events", "refunds", "audit_log"})
PAYMENTS_PER_MERCHANT = 10_000
CUSTOMERS_PER_MERCHANT = 300
NOW = SYSTEM_CLOCK.now()
STATUSES = (
    ["succeeded"] * 80
    + ["requires_payment_method"] * 8
    + ["requires_capture"] * 4
    + ["canceled"] * 4
    + ["requires_action"] * 2
    + ["processing"] * 2
)
EXPLAINED = ("SELECT", "WITH", "INSERT", "UPDATE", "DELETE")


def _id(prefix: str, at: datetime) -> str:
    return f"{prefix}_{ULID.from_datetime(at)}"


def _data(object_id: str) -> str:
    return json.dumps({"object": {"id": object_id}})


@dataclass
class Seeded:
    merchant: NewMerchant
    customers: list[str]
    payments: list[str]
    refunds: list[str]
    events: list[str]


async def _seed_merchant(conn: asyncpg.Connection, merchant_id: str, rng: random.Random) -> Seeded:
    """A year of payments: 1-2 attempts and 2 events each, 5% refunded, some customers."""
    start = NOW - timedelta(days=365)
    customers = [
        (_id("cus", start), merchant_id, False, f"c{n}-{uuid.uuid4().hex[:6]}@example.com", start)
        for n in range(CUSTOMERS_PER_MERCHANT)
    ]
    payments, attempts, events, refunds = [], [], [], []
    for n in range(PAYMENTS_PER_MERCHANT):
        at = start + timedelta(seconds=n * 365 * 86400 / PAYMENTS_PER_MERCHANT)
        pay_id, status, amount = _id("pay", at), rng.choice(STATUSES), rng.randint(100, 90_000)
        received = amount if status == "succeeded" else 0
        refunded = received if status == "succeeded" and rng.random() < 0.05 else 0
        customer = rng.choice(customers)[0] if rng.random() < 0.7 else None
        payments.append(
            (pay_id, merchant_id, False, status, amount, "USD", "automatic",
             amount if status == "requires_capture" else 0, received, refunded, customer,
             "simulator", f"ref-{pay_id}", at, at)
        )  # fmt: skip
        if rng.random() < 0.3:
            attempts.append((_id("att", at), pay_id, "authorize", "simulator", "declined",
                             amount, at, at))  # fmt: skip
        attempts.append((_id("att", at), pay_id, "authorize", "simulator",
                         "succeeded" if received else "pending", amount, at, at))  # fmt: skip
        events.append((_id("evt", at), merchant_id, False, "payment.created", pay_id, _data(pay_id), at,
                       at))  # fmt: skip
        events.append((_id("evt", at), merchant_id, False, f"payment.{status}", pay_id, _data(pay_id), at,
                       at))  # fmt: skip
        if refunded:
            refund_id = _id("re", at)
            refunds.append((refund_id, merchant_id, False, pay_id, refunded, "USD", "succeeded",
                            at))  # fmt: skip
            events.append((_id("evt", at), merchant_id, False, "refund.succeeded", refund_id, _data(refund_id),
                           at, at))  # fmt: skip
    await conn.copy_records_to_table(
        "customers", records=customers,
        columns=["id", "merchant_id", "livemode", "email", "created_at"],
    )  # fmt: skip
    await conn.copy_records_to_table(
        "payments", records=payments,
        columns=["id", "merchant_id", "livemode", "status", "amount", "currency",
                 "capture_method", "amount_capturable", "amount_received", "amount_refunded",
                 "customer_id", "connector", "reference", "created_at", "updated_at"],
    )  # fmt: skip
    await conn.copy_records_to_table(
        "payment_attempts", records=attempts,
        columns=["id", "payment_id", "operation", "connector", "status", "amount",
                 "created_at", "completed_at"],
    )  # fmt: skip
    await conn.copy_records_to_table(
        "events", records=events,
        columns=["id", "merchant_id", "livemode", "type", "object_id", "data", "created_at",
                 "dispatched_at"],
    )  # fmt: skip
    await conn.copy_records_to_table(
        "refunds", records=refunds,
        columns=["id", "merchant_id", "livemode", "payment_id", "amount", "currency", "status",
                 "created_at"],
    )  # fmt: skip
    return Seeded(
        NewMerchant(merchant_id, "", []),
        [c[0] for c in customers],
        [p[0] for p in payments],
        [r[0] for r in refunds],
        [e[0] for e in events],
    )


@pytest.fixture(scope="module")
def plans_url(server_url: str) -> Iterator[str]:
    with scratch_database(server_url, "paygrid_plans") as url:
        engine.upgrade(url)
        yield url


class Captured:
    """Statements the app's pool sent, first arguments kept per distinct SQL text."""

    def __init__(self) -> None:
        self.statements: dict[str, tuple[Any, ...]] = {}
        self.on = True

    def __call__(self, record: LoggedQuery) -> None:
        if self.on and record.query.lstrip().upper().startswith(EXPLAINED):
            self.statements.setdefault(record.query, tuple(record.args))


@pytest.fixture(scope="module")
async def seeded(plans_url: str) -> AsyncIterator[tuple[asyncpg.Pool, Captured, Seeded]]:
    captured = Captured()
    kwargs = engine.pool_kwargs(10)
    init = kwargs["init"]

    async def logging_init(conn: asyncpg.Connection) -> None:
        await init(conn)
        conn.add_query_logger(captured)

    pool = await asyncpg.create_pool(plans_url, **{**kwargs, "init": logging_init})
    assert pool is not None
    try:
        captured.on = False
        rng = random.Random(12)
        merchant = await create_merchant(pool, "Plans merchant")
        other = await create_merchant(pool, "Other plans merchant")
        # A plain connection: COPY sends jsonb in binary, which the pool's text codec is not.
        conn = await asyncpg.connect(plans_url)
        try:
            seeded = await _seed_merchant(conn, merchant.id, rng)
            await _seed_merchant(conn, other.id, rng)
            await conn.execute("VACUUM ANALYZE")
        finally:
            await conn.close()
        seeded.merchant = merchant
        captured.on = True
        yield pool, captured, seeded
    finally:
        await pool.close()


def _seq_scans(plan: dict[str, Any]) -> Iterator[str]:
    if plan.get("Node Type") == "Seq Scan" and plan.get("Relation Name") in GROWING:
        yield plan["Relation Name"]
    for child in plan.get("Plans", []):
        yield from _seq_scans(child)


async def _drive_api(http: httpx.AsyncClient, key: str, data: Seeded) -> None:
    deep, customer = data.payments[len(data.payments) // 10], data.customers[7]
    since, until = int((NOW - timedelta(days=200)).timestamp()), int(NOW.timestamp())
    reads: list[tuple[str, dict[str, str | int]]] = [
        ("/v1/payments", {}),
        ("/v1/payments", {"starting_after": deep}),
        ("/v1/payments", {"ending_before": deep}),
        ("/v1/payments", {"status": "canceled"}),
        ("/v1/payments", {"status": "requires_capture", "starting_after": deep}),
        ("/v1/payments", {"customer": customer}),
        ("/v1/payments", {"currency": "EUR"}),
        ("/v1/payments", {"reference": f"ref-{deep}"}),
        ("/v1/payments", {"created[gte]": since, "created[lte]": until - 86400 * 150}),
        ("/v1/payments", {"status": "succeeded", "customer": customer, "created[gte]": since}),
        (f"/v1/payments/{deep}", {}),
        ("/v1/events", {}),
        ("/v1/events", {"starting_after": data.events[len(data.events) // 10]}),
        ("/v1/events", {"type": "refund.succeeded"}),
        ("/v1/events", {"created[gte]": since, "created[lte]": until - 86400 * 150}),
        ("/v1/refunds", {}),
        ("/v1/refunds", {"payment": deep}),
        (f"/v1/refunds/{data.refunds[3]}", {}),
        ("/v1/customers", {}),
        (f"/v1/customers/{customer}", {}),
        ("/v1/audit_log", {}),
        ("/v1/audit_log", {"object": deep}),
        ("/v1/audit_log", {"action": "payment.updated"}),
        ("/v1/reports/payments_summary", {}),
        (
            "/v1/reports/payments_summary",
            {
                "from": since,
                "to": until,
                "timezone": "America/New_York",
                "group_by": "day,status,currency,connector",
            },
        ),
        ("/v1/report_runs", {}),
    ]
    for path, params in reads:
        response = await http.get(path, params=params, headers=auth(key))
        assert response.status_code == 200, (path, params, response.text)
    assert (await http.get(f"/v1/events/{data.events[9]}", headers=auth(key))).status_code == 200
    created = await http.post(
        "/v1/payments",
        json=confirmed_payment(customer=customer),
        headers=auth(key, **{"Idempotency-Key": uuid.uuid4().hex}),
    )
    assert created.status_code == 200 and created.json()["status"] == "succeeded", created.text
    refund = await http.post(
        "/v1/refunds", json={"payment": created.json()["id"], "amount": 100}, headers=auth(key)
    )
    assert refund.status_code == 200, refund.text
    listed = await http.get("/v1/payments", params={"customer": customer}, headers=auth(key))
    assert listed.json()["data"][0]["id"] == created.json()["id"]
    run = await http.post(
        "/v1/report_runs",
        json={"report_type": "payments_summary", "parameters": {"group_by": ["status"]}},
        headers=auth(key),
    )
    assert run.status_code == 200, run.text
    assert (await http.get(f"/v1/report_runs/{run.json()['id']}", headers=auth(key))).is_success


async def _drive_dashboard(http: httpx.AsyncClient, data: Seeded) -> None:
    deep = data.payments[len(data.payments) // 10]
    pages = [
        ("/dashboard", {}),
        ("/dashboard/payments", {}),
        ("/dashboard/payments", {"after": deep}),
        ("/dashboard/payments", {"before": deep}),
        ("/dashboard/payments", {"status": "refunded"}),
        ("/dashboard/payments", {"status": "canceled", "currency": "USD"}),
        ("/dashboard/payments", {"q": deep}),
        ("/dashboard/payments", {"q": "12.34"}),
        ("/dashboard/payments", {"connector": "simulator", "created_from": "2026-01-01"}),
        (f"/dashboard/payments/{deep}", {}),
        (f"/dashboard/payments/{data.payments[-1]}", {}),
        ("/dashboard/refunds", {}),
        (f"/dashboard/refunds/{data.refunds[3]}", {}),
        ("/dashboard/customers", {}),
        (f"/dashboard/customers/{data.customers[7]}", {}),
        ("/dashboard/subscriptions", {"status": "active"}),
        ("/dashboard/invoices", {"status": "open", "customer": data.customers[7]}),
        ("/dashboard/events", {}),
        (f"/dashboard/events/{data.events[9]}", {}),
        ("/dashboard/audit", {}),
        ("/dashboard/audit", {"object_id": deep}),
        ("/dashboard/reports", {"group_by": "status", "timezone": "Asia/Kathmandu"}),
    ]
    for path, params in pages:
        response = await http.get(path, params=params)
        assert response.status_code == 200, (path, params, response.text[:300])


async def test_no_sequential_scan_over_growing_tables(
    seeded: tuple[asyncpg.Pool, Captured, Seeded], settings: Settings
) -> None:
    pool, captured, data = seeded
    deps = build_deps(pool, settings)
    app = create_app(settings, deps=deps)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    user = await create_user(
        pool, merchant_id=data.merchant.id, email="plans@example.com", role="admin",
        password=PASSWORD,
    )  # fmt: skip
    admin_key = await issue_key(
        pool, data.merchant.id, "secret", False, scopes=sorted(scopes.ROLES["admin"])
    )
    try:
        async with httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL) as http:
            await _drive_api(http, admin_key.secret, data)
            assert (await sign_in(http, user.email, PASSWORD)).status_code == 303
            await _drive_dashboard(http, data)
    finally:
        captured.on = False
        await deps.connectors.aclose()
    assert len(captured.statements) > 30, "the app's statements were not captured"
    found = []
    async with pool.acquire() as conn:
        for sql, args in captured.statements.items():
            plan = json.loads(await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args))
            relations = sorted(set(_seq_scans(plan[0]["Plan"])))
            if relations:
                found.append(f"{', '.join(relations)}: {' '.join(sql.split())}")
    assert not found, "sequential scans:\n" + "\n".join(found)
