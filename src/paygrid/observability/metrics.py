"""Prometheus metrics for one app, in its own ``CollectorRegistry`` (so several apps in one
process, as in tests, never share or collide).

Two kinds of numbers:

* Counters and histograms of what this process did: HTTP requests, connector calls, webhook
  attempts, idempotent replays. With several uvicorn workers (``PAYGRID_HTTP_WORKERS``) each
  process counts only its own work and a scrape sees one process: scrape every process (one
  worker per container or pod) and let PromQL ``sum`` them. A standalone ``paygrid worker``
  serves no ``/metrics``; the in-process worker (the default) is counted by its app.
* Gauges read from the database at scrape time: payments by status, queue depths, the age of
  the oldest due job, the age of the newest (verified) backup. They are the same whichever
  process answers.

Payments are a scrape-time gauge (``paygrid_payments``), not counters of transitions: status
changes happen in the API, in workers, in provider webhooks and in status sync, possibly in
other processes, and operators ask "how many payments are processing or requires_action right
now?", which only the database answers exactly. ``increase()`` over the ``succeeded`` series
still shows throughput. The query is one ``GROUP BY`` over the payments table: cheap at a
15-60 s scrape interval for millions of rows, and bounded by a statement timeout.

The database is queried asynchronously in ``render`` before the (synchronous) collectors
produce text; a failed query leaves those gauges out and sets ``paygrid_scrape_database_ok``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from paygrid.db import backups as backups_db
from paygrid.db import jobs as jobs_db
from paygrid.db import payments as payments_db
from paygrid.db.jobs import QueueCounts
from paygrid.domain.circuit import CircuitState

log = structlog.get_logger("paygrid.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BREAKER_VALUES = {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}
# Connector call outcomes other than "ok", counted as errors by kind.
ERROR_KINDS = frozenset({"unreachable", "unknown", "rejected", "circuit_open", "error"})
# Live job statuses: succeeded jobs wait for the purge and are not work to do.
QUEUE_STATUSES = ("queued", "failed", "running", "dead")
# Webhook delays run from milliseconds (first attempt) to days (the retry schedule).
DELAY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200, 36000, 86400)


@dataclass(slots=True)
class Snapshot:
    """Numbers gathered at scrape time, rendered by ``_ScrapeCollector``."""

    payments: Sequence[payments_db.StatusCount] = field(default_factory=list)
    queues: Sequence[QueueCounts] = field(default_factory=list)
    breakers: Mapping[str, CircuitState] = field(default_factory=dict)
    database_ok: bool = True
    # Ages of the newest verified backup and of the newest of any status (None: none yet).
    backup_ages: tuple[float | None, float | None] | None = None


class Metrics:
    """One app's metrics. The connector registry reports calls through ``connector_call``;
    the request middleware, idempotency and webhook delivery call the other recorders."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_duration = Histogram(
            "paygrid_http_request_duration_seconds",
            "HTTP request latency by route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.connector_duration = Histogram(
            "paygrid_connector_call_duration_seconds",
            "Provider call latency by connector, operation and outcome "
            "(ok, unreachable, unknown, rejected, error).",
            ["connector", "operation", "outcome"],
            registry=self.registry,
        )
        self.connector_errors = Counter(
            "paygrid_connector_errors",
            "Provider calls that failed, by kind: unreachable (never reached the provider), "
            "unknown (outcome unknown, e.g. a timeout), rejected (refused unprocessed), "
            "circuit_open (failed fast), error (anything else).",
            ["connector", "account", "operation", "kind"],
            registry=self.registry,
        )
        self.webhook_attempts = Counter(
            "paygrid_webhook_attempts",
            "Webhook delivery attempts by outcome (succeeded, retry, failed = dead-lettered).",
            ["outcome"],
            registry=self.registry,
        )
        self.webhook_delay = Histogram(
            "paygrid_webhook_delivery_delay_seconds",
            "From an event's commit (created_at) to its successful delivery to an endpoint.",
            buckets=DELAY_BUCKETS,
            registry=self.registry,
        )
        self.replays = Counter(
            "paygrid_idempotent_replays",
            "Requests answered with a stored response (Idempotent-Replayed: true).",
            registry=self.registry,
        )
        self._scrape = _ScrapeCollector()
        self.registry.register(self._scrape)
        # The labelled series of the two per-request histograms, by their labels: ``labels``
        # validates, joins and locks on every call, and these are observed on every request.
        # The label values are route templates, methods, statuses and connector names, so
        # the dicts hold as many series as the histograms themselves.
        self._request_series: dict[tuple[str, str, int], Histogram] = {}
        self._call_series: dict[tuple[str, str, str], Histogram] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        series = self._request_series.get(key)
        if series is None:
            series = self._request_series[key] = self.http_duration.labels(
                method, route, str(status)
            )
        series.observe(seconds)

    def connector_call(
        self, connector: str, account: str, operation: str, outcome: str, seconds: float | None
    ) -> None:
        """One provider call; ``seconds`` is None when nothing was sent (open circuit)."""
        if seconds is not None:
            key = (connector, operation, outcome)
            series = self._call_series.get(key)
            if series is None:
                series = self._call_series[key] = self.connector_duration.labels(*key)
            series.observe(seconds)
        if outcome in ERROR_KINDS:
            self.connector_errors.labels(connector, account, operation, outcome).inc()

    def webhook_attempt(self, outcome: str, delay_seconds: float | None) -> None:
        """One delivery attempt; ``delay_seconds`` since the event's commit, when delivered."""
        self.webhook_attempts.labels(outcome).inc()
        if delay_seconds is not None:
            self.webhook_delay.observe(max(delay_seconds, 0.0))

    def replayed(self) -> None:
        self.replays.inc()

    async def render(
        self, pool: asyncpg.Pool, breakers: Mapping[str, CircuitState], now: datetime
    ) -> bytes:
        """The exposition text, with the database gauges read now (queue ages at ``now``,
        the clock that makes jobs due)."""
        snapshot = Snapshot(breakers=dict(breakers))
        try:
            async with pool.acquire() as conn, conn.transaction(readonly=True):
                await conn.execute("SET LOCAL statement_timeout = '5s'")
                snapshot.payments = await payments_db.count_by_status(conn)
                snapshot.queues = await jobs_db.queue_stats(conn, now)
                snapshot.backup_ages = _ages(await backups_db.newest(conn), now)
        except (asyncpg.PostgresError, OSError, TimeoutError) as error:
            log.warning("metrics.database_unavailable", error=type(error).__name__)
            snapshot.database_ok = False
        # No await between these two lines: a concurrent scrape cannot swap the snapshot.
        self._scrape.snapshot = snapshot
        return generate_latest(self.registry)


class _ScrapeCollector(Collector):
    def __init__(self) -> None:
        self.snapshot = Snapshot()

    def describe(self) -> Iterable[Metric]:
        return []  # no fixed description: the registry must not call collect() at register

    def collect(self) -> Iterator[Metric]:
        snapshot = self.snapshot
        yield _gauge(
            "paygrid_scrape_database_ok",
            "1 if the database gauges below were read at this scrape, 0 if not.",
            [],
            [((), 1 if snapshot.database_ok else 0)],
        )
        yield _gauge(
            "paygrid_payments",
            "Payments in each status, by connector (none before routing), currency and mode.",
            ["status", "connector", "currency", "livemode"],
            [
                (
                    (
                        row.status,
                        row.connector or "none",
                        row.currency.upper(),
                        str(row.livemode).lower(),
                    ),
                    row.payments,
                )
                for row in snapshot.payments
            ],
        )
        yield from _queue_gauges(snapshot.queues)
        yield from _backup_gauges(snapshot.backup_ages)
        yield _gauge(
            "paygrid_circuit_breaker_state",
            "Circuit breaker per connector account: 0 closed, 1 half-open, 2 open.",
            ["account"],
            [((account,), BREAKER_VALUES[state]) for account, state in snapshot.breakers.items()],
        )


def _queue_gauges(queues: Sequence[QueueCounts]) -> Iterator[Metric]:
    yield _gauge(
        "paygrid_queue_depth",
        "Jobs per queue by status: queued, failed (awaiting a retry), running, dead.",
        ["queue", "status"],
        [
            ((row.queue, status), row.counts.get(status, 0))
            for row in queues
            for status in QUEUE_STATUSES
        ],
    )
    yield _gauge(
        "paygrid_queue_oldest_job_age_seconds",
        "Age of the oldest due job per queue (0 when nothing is due).",
        ["queue"],
        [((row.queue,), row.oldest_due_seconds or 0.0) for row in queues],
    )


def _ages(
    taken: tuple[datetime | None, datetime | None], now: datetime
) -> tuple[float | None, float | None]:
    verified, newest = taken
    return _age(verified, now), _age(newest, now)


def _age(at: datetime | None, now: datetime) -> float | None:
    return None if at is None else max((now - at).total_seconds(), 0.0)


def _backup_gauges(ages: tuple[float | None, float | None] | None) -> Iterator[Metric]:
    """From the ``backups`` catalog (docs/operations.md, "Backups"): +Inf when there is no
    such backup, so an alert on the age fires; left out when the database was not read."""
    if ages is None:
        return
    verified, newest = (float("inf") if age is None else age for age in ages)
    yield _gauge(
        "paygrid_backup_age_seconds",
        "Age of the newest backup that paygrid backup verify passed (+Inf if none).",
        [],
        [((), verified)],
    )
    yield _gauge(
        "paygrid_backup_newest_age_seconds",
        "Age of the newest backup, verified or not (+Inf if none).",
        [],
        [((), newest)],
    )


def _gauge(
    name: str, documentation: str, labels: list[str], samples: Iterable[tuple[tuple[str, ...], Any]]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for values, value in samples:
        family.add_metric(list(values), float(value))
    return family
