"""What every use case receives: the tenant it acts for and the dependencies chosen at
start-up (pool, settings, connectors, broker)."""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from paygrid.broker.connection import EventBroker
from paygrid.clock import SYSTEM_CLOCK, Clock
from paygrid.config import Settings
from paygrid.connectors.registry import ConnectorRegistry
from paygrid.crypto import KeyRing
from paygrid.observability.metrics import Metrics
from paygrid.webhooks.destinations import SYSTEM_RESOLVER, HostResolver


@dataclass(frozen=True, slots=True)
class Tenant:
    """A merchant acting in one mode. Every query is scoped by both."""

    merchant_id: str
    livemode: bool


@dataclass(frozen=True, slots=True)
class Deps:
    pool: asyncpg.Pool
    settings: Settings
    connectors: ConnectorRegistry
    # Asynchronous commit, for writes a crash may lose harmlessly: idempotency-key
    # bookkeeping (a lost claim is claimed again; a lost response is rebuilt by resuming)
    # and the simulator's fake-provider state. Any later durable commit flushes them too,
    # because the WAL is flushed in order.
    bookkeeping_pool: asyncpg.Pool
    keys: KeyRing  # encrypts secrets at rest
    # The RabbitMQ connection events are published on; None without PAYGRID_AMQP_URL.
    broker: EventBroker | None = None
    # This app's Prometheus metrics (served at /metrics); ``build_deps`` also hands it to the
    # connector registry, which reports provider calls to it.
    metrics: Metrics = field(default_factory=Metrics)
    # DNS for the webhook SSRF guard (tests swap in one whose answers change).
    resolver: HostResolver = SYSTEM_RESOLVER
    # Where every time-based decision reads the time (tests swap in a FakeClock).
    clock: Clock = SYSTEM_CLOCK
