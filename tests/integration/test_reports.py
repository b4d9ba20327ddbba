"""Reports (issue 15 §3): the payments summary equals a brute-force recount in Python over
Hypothesis-generated payments, across time zones (DST changes, +5:45) and currencies of
different exponents; its CSV is its JSON; a report run's file is the synchronous CSV byte
for byte; merchants and modes never see each other's figures; and reports read from the
read pool (``PAYGRID_READ_DATABASE_URL``) while the run's own row stays on the primary."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paygrid.app import create_app
from paygrid.bootstrap import build_deps, standard_registry
from paygrid.config import Settings
from paygrid.db import engine
from paygrid.db.jobs import DEFAULT_QUEUE
from paygrid.dependencies import Deps
from paygrid.domain.payments import PaymentStatus
from paygrid.services.merchants import NewMerchant, create_merchant, issue_key
from tests.conftest import TEST_BASE_URL, Api, auth, scratch_database
from tests.integration import test_dashboard as dashboard_tests
from tests.integration.test_dashboard import Login
from tests.integration.worker_harness import eventually, running

# The dashboard's signed-in clients, shared as fixtures by name.
new_client = dashboard_tests.new_client
login = dashboard_tests.login

ZONES = ("UTC", "America/New_York", "Asia/Kathmandu", "Europe/London", "Australia/Lord_Howe")
# Around the DST changes of 2026: the US springs forward on March 8 and falls back on
# November 1; Europe on March 29 and October 25; Lord Howe moves by 30 minutes (April 5).
ANCHORS = (
    datetime(2026, 3, 6, tzinfo=UTC),
    datetime(2026, 3, 27, tzinfo=UTC),
    datetime(2026, 4, 3, tzinfo=UTC),
    datetime(2026, 10, 23, tzinfo=UTC),
    datetime(2026, 10, 30, tzinfo=UTC),
)
SPAN_DAYS = 5
CURRENCIES = ("USD", "JPY", "KWD")  # exponents 2, 0 and 3
CONNECTORS = (None, "simulator", "stripe")
DIMENSIONS = ("day", "status", "currency", "connector")
MEASURES = (
    "count",
    "amount",
    "amount_received",
    "amount_refunded",
    "fee",
    "net",
    "fee_pending_count",
)


@dataclass(frozen=True)
class GenRefund:
    amount: int
    status: str
    fee: int | None
    after: timedelta  # after its payment

    @property
    def net(self) -> int | None:
        # Signed as in the balance: gross is minus the refunded amount, net = gross - fee.
        return None if self.fee is None else -self.amount - self.fee


@dataclass(frozen=True)
class GenPayment:
    created: datetime
    status: PaymentStatus
    currency: str
    connector: str | None
    amount: int
    received: int
    fee: int | None
    refunds: tuple[GenRefund, ...] = field(default=())

    @property
    def refunded(self) -> int:
        return sum(r.amount for r in self.refunds if r.status != "failed")

    @property
    def net(self) -> int | None:
        return None if self.fee is None else self.received - self.fee


@st.composite
def payments(draw: st.DrawFn, anchor: datetime) -> GenPayment:
    seconds = draw(
        st.one_of(
            st.integers(0, SPAN_DAYS * 86400),
            # Exactly on, or one second around, a quarter hour: where +5:45 and DST days cut.
            st.integers(0, SPAN_DAYS * 96)
            .map(lambda q: q * 900)
            .flatmap(lambda s: st.sampled_from([s - 1, s, s + 1])),
        )
    )
    status = draw(st.sampled_from(list(PaymentStatus)))
    amount = draw(st.integers(1, 5_000_000))
    received = draw(st.integers(1, amount)) if status is PaymentStatus.SUCCEEDED else 0
    fee = draw(st.one_of(st.none(), st.integers(0, received // 10))) if received else None
    refunds: list[GenRefund] = []
    left = received
    for _ in range(draw(st.integers(0, 2)) if received else 0):
        part = draw(st.integers(0, left))
        refund_status = draw(st.sampled_from(["succeeded", "pending", "failed"]))
        if part == 0:
            continue
        refund_fee = draw(st.one_of(st.none(), st.integers(0, 30)))
        after = timedelta(seconds=draw(st.integers(1, 20 * 86400)))
        refunds.append(GenRefund(part, refund_status, refund_fee, after))
        if refund_status != "failed":
            left -= part
    return GenPayment(
        created=anchor + timedelta(seconds=seconds),
        status=status,
        currency=draw(st.sampled_from(CURRENCIES)),
        connector=draw(st.sampled_from(CONNECTORS)),
        amount=amount,
        received=received,
        fee=fee,
        refunds=tuple(refunds),
    )


async def insert(
    pool: asyncpg.Pool, merchant_id: str, livemode: bool, generated: list[GenPayment]
) -> None:
    """Write the generated payments and refunds in bulk (``COPY``), consistent with the
    schema's constraints: received within the amount, refunds within what was received."""
    payment_rows, refund_rows = [], []
    for p in generated:
        pay_id = f"pay_{uuid.uuid4().hex}"
        payment_rows.append(
            (pay_id, merchant_id, livemode, p.status.value, p.amount, p.currency, "automatic",
             0, p.received, p.refunded, p.connector, f"ref-{pay_id}", p.fee, p.net, p.created,
             p.created)
        )  # fmt: skip
        for r in p.refunds:
            refund_rows.append(
                (f"re_{uuid.uuid4().hex}", merchant_id, livemode, pay_id, r.amount, p.currency,
                 r.status, r.fee, r.net, p.created + r.after)
            )  # fmt: skip
    async with pool.acquire() as conn:
        await conn.copy_records_to_table(
            "payments", records=payment_rows,
            columns=["id", "merchant_id", "livemode", "status", "amount", "currency",
                     "capture_method", "amount_capturable", "amount_received", "amount_refunded",
                     "connector", "reference", "fee", "net", "created_at", "updated_at"],
        )  # fmt: skip
        await conn.copy_records_to_table(
            "refunds", records=refund_rows,
            columns=["id", "merchant_id", "livemode", "payment_id", "amount", "currency",
                     "status", "fee", "net", "created_at"],
        )  # fmt: skip


def recount(
    generated: list[GenPayment], start: datetime, end: datetime, zone: str, group_by: list[str]
) -> dict[tuple[str, ...], dict[str, int]]:
    """The summary, counted by hand: each payment created in ``[start, end)`` lands in the
    row of its local date in ``zone`` (zoneinfo), its status, currency and connector."""
    tz, dims = ZoneInfo(zone), [d for d in DIMENSIONS if d in {*group_by, "currency"}]
    rows: dict[tuple[str, ...], dict[str, int]] = defaultdict(lambda: dict.fromkeys(MEASURES, 0))
    for p in generated:
        if not start <= p.created < end:
            continue
        values = {
            "day": p.created.astimezone(tz).date().isoformat(),
            "status": p.status.value,
            "currency": p.currency,
            "connector": p.connector or "",
        }
        row = rows[tuple(values[d] for d in dims)]
        row["count"] += 1
        row["amount"] += p.amount
        row["amount_received"] += p.received
        row["amount_refunded"] += p.refunded
        moved = [r for r in p.refunds if r.status != "failed"]  # a failed refund moved nothing
        row["fee"] += (p.fee or 0) + sum(r.fee or 0 for r in moved)
        row["net"] += (p.net or 0) + sum(r.net or 0 for r in moved)
        pending = (p.received > 0 and p.fee is None) or any(
            r.fee is None and r.status != "failed" for r in p.refunds
        )
        row["fee_pending_count"] += int(pending)
    return dict(rows)


def keyed(data: list[dict[str, Any]], group_by: list[str]) -> dict[tuple[str, ...], dict[str, int]]:
    dims = [d for d in DIMENSIONS if d in {*group_by, "currency"}]
    return {
        tuple("" if row[d] is None else str(row[d]) for d in dims): {m: row[m] for m in MEASURES}
        for row in data
    }


def parsed_csv(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode())))


def as_text(data: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{k: "" if v is None else str(v) for k, v in row.items()} for row in data]


def local_midnight(day: date, zone: str) -> datetime:
    return datetime.combine(day, time.min, ZoneInfo(zone)).astimezone(UTC)


async def summary(api: Api, **params: Any) -> dict[str, Any]:
    """The JSON summary, after checking that the CSV of the same request is the same rows."""
    answer = await api.get("/v1/reports/payments_summary", **params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    as_csv = await api.http.get(
        "/v1/reports/payments_summary", params=params, headers=auth(api.key, Accept="text/csv")
    )
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    lines = as_csv.content.split(b"\r\n")
    assert lines[0].decode().split(",") == body["columns"]
    assert parsed_csv(as_csv.content) == as_text(body["data"])
    return body


WINDOWS = st.tuples(st.integers(0, SPAN_DAYS - 1), st.integers(1, SPAN_DAYS), st.booleans())


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    anchor=st.sampled_from(ANCHORS),
    zone=st.sampled_from(ZONES),
    window=WINDOWS,
    group_by=st.lists(st.sampled_from(DIMENSIONS), unique=True),
    data=st.data(),
)
async def test_the_summary_equals_a_brute_force_recount(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    anchor: datetime,
    zone: str,
    window: tuple[int, int, bool],
    group_by: list[str],
    data: st.DataObject,
) -> None:
    generated = data.draw(st.lists(payments(anchor), max_size=40))
    merchant = await create_merchant(pool, f"Reports {uuid.uuid4().hex[:6]}")
    await insert(pool, merchant.id, False, generated)
    first_day = anchor.astimezone(ZoneInfo(zone)).date() + timedelta(days=window[0])
    last_day = first_day + timedelta(days=window[1])
    start, end = local_midnight(first_day, zone), local_midnight(last_day, zone)
    # The window as local dates, or as the same instants in Unix seconds.
    bounds: dict[str, Any] = (
        {"from": first_day.isoformat(), "to": last_day.isoformat()}
        if window[2]
        else {"from": int(start.timestamp()), "to": int(end.timestamp())}
    )
    api = Api(client, merchant.key("secret", livemode=False))
    params = {**bounds, "timezone": zone, "group_by": ",".join(group_by)}
    body = await summary(api, **params)
    assert body["from"] == int(start.timestamp()) and body["to"] == int(end.timestamp())
    assert keyed(body["data"], group_by) == recount(generated, start, end, zone, group_by)
    # Rows come in the order of their groups, so a file of the same report never differs.
    dims = [d for d in DIMENSIONS if d in {*group_by, "currency"}]
    order = [tuple("" if r[d] is None else str(r[d]) for d in dims) for r in body["data"]]
    assert order == sorted(order, key=lambda k: tuple((v == "", v) for v in k))


async def test_days_are_cut_at_local_midnight_on_dst_days_and_at_plus_5_45(
    api: Api, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    """New York's 2026-03-08 has 23 hours and 2026-11-01 has 25; Kathmandu is UTC+5:45."""
    at = [
        datetime(2026, 3, 8, 5, 30, tzinfo=UTC),  # 00:30 EST, March 8
        datetime(2026, 3, 8, 18, 14, 59, tzinfo=UTC),  # 23:59:59 in Kathmandu (+5:45)
        datetime(2026, 3, 8, 18, 15, tzinfo=UTC),  # 00:00 on March 9 in Kathmandu
        datetime(2026, 3, 9, 3, 59, 59, tzinfo=UTC),  # 23:59:59 EDT, still March 8
        datetime(2026, 3, 9, 4, 0, tzinfo=UTC),  # 00:00 EDT, March 9
        datetime(2026, 11, 2, 4, 59, 59, tzinfo=UTC),  # 23:59:59 EST, the 25-hour Nov 1
        datetime(2026, 11, 2, 5, 0, tzinfo=UTC),  # 00:00 EST, November 2
    ]
    generated = [
        GenPayment(t, PaymentStatus.SUCCEEDED, "USD", "simulator", 1000, 1000, 30) for t in at
    ]
    await insert(pool, merchant.id, False, generated)
    march = await summary(
        api, **{"from": "2026-03-08", "to": "2026-03-10"}, timezone="America/New_York"
    )
    assert [(r["day"], r["count"], r["net"]) for r in march["data"]] == [
        ("2026-03-08", 4, 3880),
        ("2026-03-09", 1, 970),
    ]
    # The 23-hour day's window: [05:00Z on the 8th, 04:00Z on the 9th).
    assert march["to"] - march["from"] == 47 * 3600
    november = await summary(
        api, **{"from": "2026-11-01", "to": "2026-11-03"}, timezone="America/New_York"
    )
    assert [(r["day"], r["count"]) for r in november["data"]] == [
        ("2026-11-01", 1),
        ("2026-11-02", 1),
    ]
    assert november["to"] - november["from"] == 49 * 3600
    kathmandu = await summary(
        api, **{"from": "2026-03-08", "to": "2026-03-10"}, timezone="Asia/Kathmandu"
    )
    # Local midnight of March 9 is 18:15Z on March 8.
    assert kathmandu["from"] == int(datetime(2026, 3, 7, 18, 15, tzinfo=UTC).timestamp())
    assert [(r["day"], r["count"]) for r in kathmandu["data"]] == [
        ("2026-03-08", 2),
        ("2026-03-09", 3),
    ]


async def test_currencies_are_never_added_and_fees_not_yet_known_are_counted(
    api: Api, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    day = datetime(2026, 5, 4, 12, tzinfo=UTC)
    refund = GenRefund(200, "succeeded", None, timedelta(hours=1))
    await insert(
        pool,
        merchant.id,
        False,
        [
            GenPayment(day, PaymentStatus.SUCCEEDED, "USD", "stripe", 1000, 1000, 59),
            GenPayment(day, PaymentStatus.SUCCEEDED, "USD", "stripe", 500, 500, None),
            GenPayment(day, PaymentStatus.SUCCEEDED, "JPY", "stripe", 300, 300, 10, (refund,)),
            GenPayment(day, PaymentStatus.CANCELED, "KWD", None, 1500, 0, None),
        ],
    )
    body = await summary(
        api, **{"from": "2026-05-04", "to": "2026-05-05"}, group_by="status,connector"
    )
    assert body["columns"] == ["status", "currency", "connector", *MEASURES]
    rows = {(r["currency"], r["status"]): r for r in body["data"]}
    assert set(rows) == {("JPY", "succeeded"), ("KWD", "canceled"), ("USD", "succeeded")}
    assert rows[("USD", "succeeded")] == {
        "status": "succeeded", "currency": "USD", "connector": "stripe", "count": 2,
        "amount": 1500, "amount_received": 1500, "amount_refunded": 0, "fee": 59, "net": 941,
        "fee_pending_count": 1,
    }  # fmt: skip
    # The refund's fee is not known yet: the payment counts as pending; its net is only the
    # payment's (300 - 10) until the refund's balance transaction arrives.
    jpy = rows[("JPY", "succeeded")]
    assert (jpy["amount_refunded"], jpy["net"], jpy["fee_pending_count"]) == (200, 290, 1)
    assert rows[("KWD", "canceled")]["connector"] is None
    assert rows[("KWD", "canceled")]["fee_pending_count"] == 0


async def test_merchants_and_modes_never_see_each_others_figures(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    merchant: NewMerchant,
    other_merchant: NewMerchant,
) -> None:
    day = datetime(2026, 6, 1, 12, tzinfo=UTC)

    def paid(amount: int) -> list[GenPayment]:
        return [GenPayment(day, PaymentStatus.SUCCEEDED, "USD", "simulator", amount, amount, 0)]

    await insert(pool, merchant.id, False, paid(1111))
    await insert(pool, merchant.id, True, paid(2222))
    await insert(pool, other_merchant.id, False, paid(3333))
    window = {"from": "2026-06-01", "to": "2026-06-02"}
    for who, livemode, expected in (
        (merchant, False, 1111),
        (merchant, True, 2222),
        (other_merchant, False, 3333),
    ):
        body = await summary(Api(client, who.key("secret", livemode=livemode)), **window)
        assert [r["amount"] for r in body["data"]] == [expected]
    mine = Api(client, merchant.key("secret", livemode=False))
    run = await mine.post(
        "/v1/report_runs", {"report_type": "payments_summary", "parameters": window}
    )
    assert run.status_code == 200, run.text
    theirs = Api(client, other_merchant.key("secret", livemode=False))
    live = Api(client, merchant.key("secret", livemode=True))
    for stranger in (theirs, live):
        assert (await stranger.get(f"/v1/report_runs/{run.json()['id']}")).status_code == 404
        assert (await stranger.get(f"/v1/report_runs/{run.json()['id']}/file")).status_code == 404
        listed = (await stranger.get("/v1/report_runs")).json()["data"]
        assert run.json()["id"] not in {r["id"] for r in listed}


async def _run_to_the_end(api: Api, deps: Deps, run_id: str) -> dict[str, Any]:
    shown: list[dict[str, Any]] = []

    async def ended() -> bool:
        shown.append((await api.get(f"/v1/report_runs/{run_id}")).json())
        return shown[-1]["status"] in ("succeeded", "failed")

    async with running(deps, standard_registry(), DEFAULT_QUEUE):
        await eventually(ended)
    return shown[-1]


async def test_a_report_runs_file_equals_the_synchronous_csv(
    api: Api, deps: Deps, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    anchor = ANCHORS[3]
    generated = [
        GenPayment(anchor + timedelta(hours=7 * n), status, currency, connector, 900 + n, 0, None)
        for n, (status, currency, connector) in enumerate(
            (s, c, k) for s in PaymentStatus for c in CURRENCIES for k in CONNECTORS
        )
    ]
    await insert(pool, merchant.id, False, generated)
    params = {
        "from": "2026-10-23",
        "to": "2026-11-06",
        "timezone": "Europe/London",
        "group_by": ["day", "status", "connector"],
    }
    created = await api.post(
        "/v1/report_runs", {"report_type": "payments_summary", "parameters": params}
    )
    assert created.status_code == 200, created.text
    run = created.json()
    assert (run["object"], run["status"], run["result"]) == ("reporting.report_run", "queued", None)
    assert run["id"].startswith("frr_") and run["parameters"]["group_by"] == [
        "day", "status", "currency", "connector"
    ]  # fmt: skip
    assert (await api.get(f"/v1/report_runs/{run['id']}/file")).status_code == 404
    done = await _run_to_the_end(api, deps, run["id"])
    assert done["status"] == "succeeded" and done["succeeded_at"] is not None, done
    file = await api.get(f"/v1/report_runs/{run['id']}/file")
    assert file.status_code == 200 and file.headers["content-type"].startswith("text/csv")
    assert done["result"]["url"] == f"/v1/report_runs/{run['id']}/file"
    assert done["result"]["size"] == len(file.content)
    synchronous = await api.http.get(
        "/v1/reports/payments_summary",
        params={**params, "group_by": "day,status,connector"},
        headers=auth(api.key, Accept="text/csv"),
    )
    assert file.content == synchronous.content
    assert len(parsed_csv(file.content)) > 20
    # The same run by its stored parameters (Unix seconds) names the same window.
    stored = run["parameters"]
    again = await api.http.get(
        "/v1/reports/payments_summary",
        params={**stored, "group_by": ",".join(stored["group_by"])},
        headers=auth(api.key, Accept="text/csv"),
    )
    assert again.content == file.content
    events = (await api.get("/v1/events", type="reporting.report_run.succeeded")).json()["data"]
    assert [e["data"]["object"]["id"] for e in events] == [run["id"]]
    listed = (await api.get("/v1/report_runs")).json()
    assert [r["id"] for r in listed["data"]] == [run["id"]]


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "parameter_invalid", "timezone"),
        ({"timezone": "../../etc/passwd"}, "parameter_invalid", "timezone"),
        ({"from": "2026-05-02", "to": "2026-05-01"}, "parameter_invalid", "from"),
        ({"from": "2026-05-01", "to": "2026-05-01"}, "parameter_invalid", "from"),
        ({"from": "2025-01-01", "to": "2026-01-03"}, "report_window_too_large", "to"),
        ({"group_by": "day,week"}, "parameter_invalid", "group_by"),
        ({"from": "yesterday"}, "parameter_invalid", "from"),
        ({"from": "2026-02-30"}, "parameter_invalid", "from"),
        ({"to": "1999-12-31"}, "parameter_invalid", "to"),
        ({"currency": "usd"}, "parameter_unknown", "currency"),
    ],
)
async def test_bad_parameters_are_clear_400s(
    api: Api, params: dict[str, str], code: str, param: str
) -> None:
    answer = await api.get("/v1/reports/payments_summary", **params)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["param"]) == (code, param), error
    if code == "report_window_too_large":
        assert "/v1/report_runs" in error["message"]


async def test_report_runs_take_larger_windows_but_check_their_parameters(api: Api) -> None:
    base = {"report_type": "payments_summary"}
    wide = await api.post(
        "/v1/report_runs", {**base, "parameters": {"from": "2024-01-01", "to": "2026-01-01"}}
    )
    assert wide.status_code == 200 and wide.json()["status"] == "queued", wide.text
    for body, param in (
        ({**base, "parameters": {"from": "2001-01-01", "to": "2026-01-01"}}, "to"),
        ({**base, "parameters": {"timezone": "Nowhere"}}, "timezone"),
        ({"report_type": "balance_summary"}, "report_type"),
        ({**base, "parameters": {"group_by": ["hour"]}}, "group_by"),
    ):
        refused = await api.post("/v1/report_runs", body)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["param"].startswith(param), refused.text


async def test_a_report_key_reads_summaries_but_needs_write_for_runs(
    client: httpx.AsyncClient, pool: asyncpg.Pool, merchant: NewMerchant
) -> None:
    reader = await issue_key(pool, merchant.id, "secret", False, scopes=["reports:read"])
    api = Api(client, reader.secret)
    assert (await api.get("/v1/reports/payments_summary")).status_code == 200
    assert (await api.get("/v1/report_runs")).status_code == 200
    refused = await api.post("/v1/report_runs", {"report_type": "payments_summary"})
    assert refused.status_code == 403, refused.text
    payments_only = await issue_key(pool, merchant.id, "secret", False, scopes=["payments:read"])
    denied = await Api(client, payments_only.secret).get("/v1/reports/payments_summary")
    assert denied.status_code == 403


@pytest.fixture
def replica_url(server_url: str) -> Iterator[str]:
    """A second database standing in for the replica: migrated, with its own rows."""
    with scratch_database(server_url, "paygrid_replica") as url:
        engine.upgrade(url)
        yield url


@pytest.fixture
async def read_pool(replica_url: str) -> AsyncIterator[asyncpg.Pool]:
    created = await engine.create_read_pool(replica_url, 2)
    yield created
    await created.close()


async def test_reports_read_from_the_read_pool_and_runs_stay_on_the_primary(
    deps: Deps,
    settings: Settings,
    pool: asyncpg.Pool,
    merchant: NewMerchant,
    replica_url: str,
    read_pool: asyncpg.Pool,
) -> None:
    day = datetime(2026, 7, 1, 12, tzinfo=UTC)
    await insert(pool, merchant.id, False, [
        GenPayment(day, PaymentStatus.SUCCEEDED, "USD", "simulator", 1000, 1000, 0)
    ])  # fmt: skip
    # The replica's copy differs, so the figures tell where they were read.
    replica = await asyncpg.connect(replica_url)
    try:
        await replica.execute("SET session_replication_role = replica")  # no FK to merchants
        await replica.copy_records_to_table(
            "payments",
            records=[(f"pay_{uuid.uuid4().hex}", merchant.id, False, "succeeded", 777, "JPY",
                      "automatic", 777, "x", day, day)],
            columns=["id", "merchant_id", "livemode", "status", "amount", "currency",
                     "capture_method", "amount_received", "reference", "created_at",
                     "updated_at"],
        )  # fmt: skip
    finally:
        await replica.close()
    with_replica = replace(deps, read_pool=read_pool)
    app = create_app(settings, deps=with_replica)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL) as http:
        api = Api(http, merchant.key("secret", livemode=False))
        window = {"from": "2026-07-01", "to": "2026-07-02"}
        body = await summary(api, **window)
        assert [(r["currency"], r["amount"]) for r in body["data"]] == [("JPY", 777)]
        # The run is written to the primary and read back from it at once (a replica may
        # lag); its figures are read from the replica by the job.
        created = await api.post(
            "/v1/report_runs", {"report_type": "payments_summary", "parameters": window}
        )
        assert created.status_code == 200, created.text
        assert (await api.get(f"/v1/report_runs/{created.json()['id']}")).status_code == 200
        done = await _run_to_the_end(api, with_replica, created.json()["id"])
        assert done["status"] == "succeeded", done
        file = await api.get(f"/v1/report_runs/{created.json()['id']}/file")
        assert [r["amount"] for r in parsed_csv(file.content)] == ["777"]
    # (the replica's name asked of it: a URL over a Unix socket ends with the socket's path)
    replica_name = await read_pool.fetchval("SELECT current_database()")
    names = await pool.fetch(
        "SELECT application_name FROM pg_stat_activity WHERE datname = $1", replica_name
    )
    assert names and all(r["application_name"].startswith("paygrid-read[") for r in names)
    # Nothing can write through the read pool.
    with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
        await read_pool.execute("UPDATE payments SET description = 'x'")
    # Without a read pool, reports read from the primary.
    assert deps.report_reads is deps.pool and with_replica.report_reads is read_pool


async def test_the_read_pool_is_built_from_the_setting(
    settings: Settings, pool: asyncpg.Pool, replica_url: str
) -> None:
    from pydantic import SecretStr

    from paygrid.bootstrap import open_read_pool

    assert await open_read_pool(settings) is None
    configured = settings.model_copy(update={"read_database_url": SecretStr(replica_url)})
    opened = await open_read_pool(configured)
    assert opened is not None
    try:
        deps = build_deps(pool, configured, read_pool=opened)
        assert deps.report_reads is opened
        assert (await opened.fetchval("SELECT current_setting('application_name')")).startswith(
            "paygrid-read["
        )
    finally:
        await opened.close()


async def test_the_dashboards_reports_page_shows_the_summary_and_downloads_its_csv(
    login: Login, api: Api, merchant: NewMerchant, pool: asyncpg.Pool
) -> None:
    day = datetime(2026, 8, 3, 12, tzinfo=UTC)
    await insert(pool, merchant.id, False, [
        GenPayment(day, PaymentStatus.SUCCEEDED, "KWD", "stripe", 12345, 12345, 345),
        GenPayment(day, PaymentStatus.CANCELED, "JPY", None, 500, 0, None),
    ])  # fmt: skip
    http, _ = await login("viewer")
    overview = (await http.get("/dashboard")).text
    assert '<a href="/dashboard/reports"' in overview
    query = "from=2026-08-03&to=2026-08-04&timezone=Asia/Kathmandu&group_by=day&group_by=status"
    page = await http.get(f"/dashboard/reports?{query}")
    assert page.status_code == 200, page.text[:500]
    cells = re.findall(r"<tr>(<td>.*?)</tr>", page.text)
    texts = [re.sub(r"<[^>]+>", "|", c).replace("||", "|").strip("|") for c in cells]
    # Grouped by day and status (and currency, always); KWD has three decimals, JPY none.
    assert texts == [
        "2026-08-03|Canceled|JPY|1|500 JPY|0 JPY|0 JPY|0 JPY|0 JPY|0",
        "2026-08-03|Succeeded|KWD|1|12.345 KWD|12.345 KWD|0.000 KWD|0.345 KWD|12.000 KWD|0",
    ], texts
    link = re.search(r'href="(/dashboard/reports\.csv\?[^"]+)"', page.text)
    assert link is not None
    download = await http.get(link.group(1).replace("&amp;", "&"))
    assert download.status_code == 200 and "attachment" in download.headers["content-disposition"]
    from_api = await api.http.get(
        "/v1/reports/payments_summary",
        params={"from": "2026-08-03", "to": "2026-08-04", "timezone": "Asia/Kathmandu",
                "group_by": "day,status"},
        headers=auth(api.key, Accept="text/csv"),
    )  # fmt: skip
    assert download.content == from_api.content
    refused = await http.get("/dashboard/reports?timezone=Moon/Base")
    assert refused.status_code == 400 and "Unknown timezone" in refused.text
