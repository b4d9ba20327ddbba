"""``GET /metrics`` after real requests, and OpenTelemetry spans with the trace id in the
request's log line. Values are compared before and after; timings are never asserted."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import asyncpg
import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, format_trace_id
from prometheus_client.parser import text_string_to_metric_families

from paygrid.app import create_app
from paygrid.bootstrap import build_deps, standard_registry
from paygrid.clock import SYSTEM_CLOCK
from paygrid.config import Settings
from paygrid.db import engine
from paygrid.db import jobs as jobs_db
from paygrid.observability import tracing
from paygrid.observability.metrics import Metrics
from paygrid.services.merchants import NewMerchant, create_merchant
from paygrid.webhooks.dispatcher import EventDispatcher
from tests.conftest import (
    LOCAL_WEBHOOK_HOSTS,
    ROOT,
    SUCCESS_CARD,
    TEST_BASE_URL,
    Api,
    card,
    scratch_database,
)
from tests.integration.webhook_receiver import receiver
from tests.integration.worker_harness import eventually, running

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
async def api(
    pool: asyncpg.Pool, bookkeeping_pool: asyncpg.Pool, merchant: NewMerchant
) -> AsyncIterator[Api]:
    """An app whose circuits open after one failure, so the breaker gauge shows "open"."""
    settings = Settings(public_url=TEST_BASE_URL, circuit_breaker_threshold=1)
    deps = build_deps(pool, settings, bookkeeping_pool=bookkeeping_pool)
    app = create_app(settings, deps=deps)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL) as http:
        yield Api(http, merchant.key("secret", livemode=False))
    await deps.connectors.aclose()


async def scrape(http: httpx.AsyncClient) -> Samples:
    response = await http.get("/metrics")  # no API key
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name`` over the series carrying ``labels`` (0 when there is none)."""
    wanted = set(labels.items())
    return sum(v for (n, series), v in samples.items() if n == name and wanted <= series)


async def _account(api: Api, **metadata: str) -> str:
    response = await api.post(
        "/v1/connector_accounts", {"provider": "simulator", "metadata": metadata}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def _route(api: Api, *accounts: str) -> None:
    destinations = [{"connector_account": account} for account in accounts]
    response = await api.post("/v1/routing_rules", {"destinations": destinations})
    assert response.status_code == 200, response.text


def _payment(**fields: object) -> dict[str, object]:
    return {
        "amount": 2500,
        "currency": "usd",
        "confirm": True,
        "payment_method_data": card(SUCCESS_CARD),
        **fields,
    }


async def test_requests_payments_replays_and_connector_failures_are_measured(
    api: Api, pool: asyncpg.Pool
) -> None:
    before = await scrape(api.http)
    succeeded = {"status": "succeeded", "currency": "USD", "livemode": "false"}

    created = await api.post("/v1/payments", _payment(), **{"Idempotency-Key": "metrics-1"})
    replay = await api.post("/v1/payments", _payment(), **{"Idempotency-Key": "metrics-1"})
    assert created.status_code == replay.status_code == 200
    assert replay.headers["idempotent-replayed"] == "true"
    fetched = await api.get(f"/v1/payments/{created.json()['id']}")
    assert fetched.status_code == 200

    down = await _account(api, failure_mode="unavailable")
    up = await _account(api)
    await _route(api, down, up)
    failed_over = await api.post("/v1/payments", _payment())
    assert failed_over.json()["connector_account"] == up

    after = await scrape(api.http)
    assert value(after, "paygrid_idempotent_replays_total") == 1
    latency = "paygrid_http_request_duration_seconds_count"
    # Labelled by route template: the replay (answered before routing) counts there too.
    assert value(after, latency, method="POST", route="/v1/payments", status="200") == 3
    assert value(after, latency, route="/v1/payments/{payment_id}", status="200") == 1
    assert not [s for (n, s) in after if n == latency and ("route", "unmatched") in s]
    assert (
        value(after, "paygrid_payments", **succeeded)
        >= value(before, "paygrid_payments", **succeeded) + 2
    )
    calls = "paygrid_connector_call_duration_seconds_count"
    assert value(after, calls, connector="simulator", operation="authorize", outcome="ok") >= 2
    assert value(after, calls, operation="authorize", outcome="unreachable") == 1
    errors = "paygrid_connector_errors_total"
    assert value(after, errors, account=down, operation="authorize", kind="unreachable") == 1
    assert value(after, errors, account=up) == 0
    breakers = "paygrid_circuit_breaker_state"
    assert value(after, breakers, account=down) == 2  # open after one failure (threshold 1)
    assert value(after, breakers, account=up) == 0
    assert value(after, "paygrid_scrape_database_ok") == 1


async def test_queue_depth_and_oldest_job_age_come_from_the_jobs_table(
    api: Api, pool: asyncpg.Pool
) -> None:
    queue = f"metrics_{uuid.uuid4().hex[:8]}"  # no worker polls it
    hour_ago = SYSTEM_CLOCK.now() - timedelta(hours=1)
    job_ids = [
        await jobs_db.enqueue(pool, "metrics.probe", queue=queue, run_at=hour_ago),
        await jobs_db.enqueue(pool, "metrics.probe", queue=queue),
    ]
    try:
        samples = await scrape(api.http)
    finally:
        await pool.execute("DELETE FROM jobs WHERE id = ANY($1::text[])", job_ids)
    assert value(samples, "paygrid_queue_depth", queue=queue, status="queued") == 2
    assert value(samples, "paygrid_queue_depth", queue=queue, status="running") == 0
    assert value(samples, "paygrid_queue_oldest_job_age_seconds", queue=queue) >= 3600


@pytest.fixture
def own_database_url(server_url: str) -> Iterator[str]:
    with scratch_database(server_url, "paygrid_metrics") as url:
        engine.upgrade(url)
        yield url


@pytest.fixture
async def own_database(own_database_url: str) -> AsyncIterator[tuple[asyncpg.Pool, asyncpg.Pool]]:
    """A database of this test's own (its pool and bookkeeping pool): the counters below are
    the process's, so no other test's webhook deliveries, due on the shared ``webhooks``
    queue, may be delivered (and counted) by this test's worker."""
    pool = await engine.create_pool(own_database_url, 8)
    bookkeeping = await engine.create_pool(own_database_url, 4, durable=False)
    try:
        yield pool, bookkeeping
    finally:
        await bookkeeping.close()
        await pool.close()


async def test_webhook_outcomes_and_delivery_delay(
    own_database: tuple[asyncpg.Pool, asyncpg.Pool],
) -> None:
    pool, bookkeeping_pool = own_database
    merchant = await create_merchant(pool, "Metrics")
    settings = Settings(
        public_url=TEST_BASE_URL,
        webhook_retry_schedule="0,0,0",
        webhook_allowed_hosts=LOCAL_WEBHOOK_HOSTS,
    )
    deps = build_deps(pool, settings, bookkeeping_pool=bookkeeping_pool)
    app = create_app(settings, deps=deps)
    stopping = asyncio.Event()
    dispatcher = asyncio.create_task(EventDispatcher(deps, poll_seconds=0.2).run(stopping))
    samples: Samples = {}
    try:
        async with (
            receiver() as hooks,
            running(deps, standard_registry(), "webhooks"),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=TEST_BASE_URL
            ) as http,
        ):
            api = Api(http, merchant.key("secret", False))
            hooks.script = [(500, {})]
            endpoint = await api.post(
                "/v1/webhook_endpoints",
                {"url": hooks.url, "enabled_events": ["payment.succeeded"]},
            )
            assert endpoint.status_code == 200, endpoint.text
            await api.post("/v1/payments", _payment())

            async def delivered() -> bool:
                return len(hooks.received) >= 2

            # Its own database: the worker delivers only this test's webhooks.
            await eventually(delivered, deadline=60)

            async def recorded() -> bool:  # the attempt is recorded just after the answer
                samples.update(await scrape(http))
                return value(samples, "paygrid_webhook_attempts_total", outcome="succeeded") >= 1

            await eventually(recorded)
    finally:
        # Stopped even when the test fails: a dispatcher left running would hold its LISTEN
        # connection and deliver later tests' events.
        stopping.set()
        await dispatcher
        await deps.connectors.aclose()
    assert value(samples, "paygrid_webhook_attempts_total", outcome="retry") == 1
    assert value(samples, "paygrid_webhook_attempts_total", outcome="succeeded") == 1
    assert value(samples, "paygrid_webhook_delivery_delay_seconds_count") == 1


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    yield exporter
    tracing.install(None)
    provider.shutdown()


async def test_a_request_makes_a_span_and_its_log_line_has_the_trace_id(
    api: Api, spans: InMemorySpanExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    parent_trace = uuid.uuid4().hex
    traceparent = f"00-{parent_trace}-{uuid.uuid4().hex[:16]}-01"
    capsys.readouterr()
    response = await api.post("/v1/payments", _payment(), traceparent=traceparent)
    assert response.status_code == 200, response.text

    finished = spans.get_finished_spans()
    [server] = [s for s in finished if s.kind is SpanKind.SERVER]
    assert server.name == "POST /v1/payments"
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/v1/payments"
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["paygrid.request_id"] == response.headers["x-request-id"]
    trace_id = format_trace_id(server.context.trace_id)
    assert trace_id == parent_trace  # the caller's traceparent is continued
    [call] = [s for s in finished if s.name == "connector.authorize"]
    assert call.context.trace_id == server.context.trace_id
    assert call.parent is not None
    assert call.attributes is not None and call.attributes["paygrid.outcome"] == "ok"

    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    [completed] = [line for line in lines if line["event"] == "request.completed"]
    assert completed["trace_id"] == trace_id
    assert completed["request_id"] == response.headers["x-request-id"]


async def test_a_global_tracer_provider_gives_one_server_span_per_request(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``tracing.configure`` also makes its provider OpenTelemetry's global one (for
    instrumented libraries). FastAPI's own telemetry would then trace every request a second
    time; paygrid turns it off, as it makes its own spans, metrics and logs."""
    from opentelemetry import trace

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    # What ``trace.set_tracer_provider`` in ``configure`` does, undone after the test.
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    tracing.install(provider)
    try:
        response = await api.post("/v1/payments", _payment())
    finally:
        tracing.install(None)
        provider.shutdown()
    assert response.status_code == 200, response.text
    servers = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert [s.name for s in servers] == ["POST /v1/payments"]


async def test_without_tracing_nothing_is_traced(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    assert not tracing.enabled()
    capsys.readouterr()
    response = await api.post("/v1/payments", _payment())
    assert response.status_code == 200
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    [completed] = [line for line in lines if line["event"] == "request.completed"]
    assert "trace_id" not in completed


def test_the_otlp_endpoint_is_a_base_url() -> None:
    assert tracing.traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert tracing.traces_url("http://c:4318/v1/traces/") == "http://c:4318/v1/traces"


def test_the_grafana_dashboard_charts_only_metrics_paygrid_serves() -> None:
    dashboard = (ROOT / "deploy" / "grafana" / "paygrid-dashboard.json").read_text()
    charted = set(re.findall(r"paygrid_[a-z_]+", dashboard))
    served = {
        family.name + suffix
        for family in Metrics().registry.collect()
        for suffix in ("", "_total", "_bucket", "_count", "_sum")
    }
    assert charted and charted <= served, charted - served
