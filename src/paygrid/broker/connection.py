"""The process's connection to RabbitMQ, for publishing events with publisher confirms."""

from __future__ import annotations

import asyncio
from typing import Final

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractRobustConnection

EXCHANGE: Final = "paygrid.events"
"""The durable topic exchange every committed event is published to, keyed by its type."""
PUBLISH_TIMEOUT_SECONDS: Final = 10.0


class PublishFailed(Exception):
    """The broker did not confirm a message in time: it may or may not have it."""


class EventBroker:
    """One robust AMQP connection per process, opened at the first publish.

    aio-pika's robust connection reconnects after a broker restart and re-declares the
    exchange on its channel; a publish made while it is down fails (it is not replayed), and
    the job that made it is retried. The channel uses publisher confirms, so ``publish``
    returns only once the broker has taken responsibility for the message."""

    def __init__(self, url: str, *, timeout_seconds: float = PUBLISH_TIMEOUT_SECONDS) -> None:
        self._url = url
        self._timeout_seconds = timeout_seconds
        self._lock = asyncio.Lock()
        self._connection: AbstractRobustConnection | None = None
        self._exchange: AbstractExchange | None = None

    @property
    def connected(self) -> bool:
        """Whether a connection is open (or being restored by aio-pika)."""
        return self._connection is not None and not self._connection.is_closed

    async def publish(self, message: aio_pika.Message, routing_key: str) -> None:
        """Publish ``message`` to the exchange and wait for the broker's confirm. Raises when
        the broker is unreachable, refuses (nacks) the message, or does not confirm within
        the timeout: the caller retries, so a message may arrive twice but is never dropped
        silently."""
        try:
            # One deadline for connecting and confirming: aio-pika waits for a reconnecting
            # channel without a timeout of its own.
            async with asyncio.timeout(self._timeout_seconds):
                exchange = await self._ready_exchange()
                # Not mandatory: an event nobody has bound a queue for yet is dropped by
                # design, not returned to us as an error.
                await exchange.publish(message, routing_key, mandatory=False)
        except TimeoutError:
            raise PublishFailed(
                f"the broker did not confirm the message within {self._timeout_seconds:g}s"
            ) from None

    async def _ready_exchange(self) -> AbstractExchange:
        async with self._lock:  # concurrent first publishes open one connection, not many
            if self._exchange is None:
                connection = self._connection
                if connection is None or connection.is_closed:
                    connection = await aio_pika.connect_robust(self._url)
                    self._connection = connection
                channel = await connection.channel(publisher_confirms=True)
                self._exchange = await channel.declare_exchange(
                    EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
                )
            return self._exchange

    async def close(self) -> None:
        """Close the connection, if one is open. A later publish opens a new one."""
        async with self._lock:
            connection, self._connection, self._exchange = self._connection, None, None
            if connection is not None:
                await connection.close()
