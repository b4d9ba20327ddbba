"""The dependencies every use case and job receives, chosen once at start-up by
``paygrid.bootstrap``: the pools, settings, connectors, keys, metrics, clock, and the seams
tests swap (DNS, the message broker).

This module sits below every package that takes ``Deps`` (services, webhooks, broker, the
worker), so they all import it without importing upward. It therefore names the broker and
DNS by the small Protocols below, not by their implementations in ``paygrid.broker`` and
``paygrid.webhooks``, which sit above it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import aio_pika
import asyncpg

from paygrid.clock import SYSTEM_CLOCK, Clock
from paygrid.config import Settings
from paygrid.connectors.registry import ConnectorRegistry
from paygrid.crypto import KeyRing
from paygrid.db.read_replica import ReadReplica
from paygrid.lookup_cache import Lookups
from paygrid.observability.metrics import Metrics


class HostResolver(Protocol):
    """DNS, as a seam: tests swap in a resolver whose answers change (rebinding)."""

    async def resolve(self, host: str, port: int) -> list[str]:
        """The addresses ``host`` resolves to; raises ``OSError`` when it does not."""
        ...


class MessageBroker(Protocol):
    """Where committed events are published (``paygrid.broker.connection.EventBroker``)."""

    @property
    def connected(self) -> bool:
        """Whether a connection is open."""
        ...

    async def publish(self, message: aio_pika.Message, routing_key: str) -> None:
        """Publish ``message`` and wait until the broker has taken it."""
        ...

    async def close(self) -> None:
        """Close the connection, if one is open."""
        ...


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
    # DNS for the webhook SSRF guard (tests swap in one whose answers change).
    resolver: HostResolver
    # The RabbitMQ connection events are published on; None without PAYGRID_AMQP_URL.
    broker: MessageBroker | None = None
    # This app's Prometheus metrics (served at /metrics); ``build_deps`` also hands it to the
    # connector registry, which reports provider calls to it.
    metrics: Metrics = field(default_factory=Metrics)
    # Where every time-based decision reads the time (tests swap in a FakeClock).
    clock: Clock = SYSTEM_CLOCK
    # Short-lived caches of hot lookups (API keys, routing inputs), dropped in every process
    # when the rows change; they answer only while a LISTEN hears that (paygrid.lookup_cache).
    lookups: Lookups = field(default_factory=Lookups)
    # Reports' reads (PAYGRID_READ_DATABASE_URL, a streaming replica); None: the primary.
    # Only read-only report queries use it, never a request or job that writes, so a read
    # after a write in the same request sequence never lands on a replica that lags.
    read_pool: asyncpg.Pool | None = None
    # The same replica for list endpoints and reports marked read-only, behind the rule that
    # lets it serve only a read it is caught up for (paygrid.db.read_replica); None: unset.
    read_replica: ReadReplica | None = None

    @property
    def report_reads(self) -> asyncpg.Pool:
        """The pool report queries read from: the replica's when configured."""
        return self.pool if self.read_pool is None else self.read_pool
