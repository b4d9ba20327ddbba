"""Everything a worker process runs: the job worker (on the default, webhooks and broker
queues) and the outbox dispatcher that turns committed events into webhook deliveries and
broker publishes."""

from __future__ import annotations

import asyncio

import structlog

from paygrid.broker.publisher import QUEUE as BROKER_QUEUE
from paygrid.config import Settings
from paygrid.db.jobs import DEFAULT_QUEUE
from paygrid.services.context import Deps
from paygrid.webhooks.delivery import QUEUE as WEBHOOKS_QUEUE
from paygrid.webhooks.delivery import close_sessions
from paygrid.webhooks.dispatcher import EventDispatcher
from paygrid.worker.kinds import standard_registry
from paygrid.worker.runner import Worker, WorkerConfig

# The broker queue is always worked: without PAYGRID_AMQP_URL no job is ever put on it.
QUEUES = (DEFAULT_QUEUE, WEBHOOKS_QUEUE, BROKER_QUEUE)
log = structlog.get_logger("paygrid.worker")


class Background:
    """Start and stop the job worker and the event dispatcher together."""

    def __init__(self, deps: Deps, settings: Settings, queues: tuple[str, ...] = QUEUES) -> None:
        self._deps = deps
        self.worker = Worker(
            deps, standard_registry(), WorkerConfig.from_settings(settings, queues)
        )
        self._dispatcher = EventDispatcher(deps, poll_seconds=settings.worker_poll_seconds)
        self._stopping = asyncio.Event()
        self._dispatching: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.worker.start()
        self._dispatching = asyncio.create_task(self._dispatcher.run(self._stopping))

    async def stop(self) -> None:
        """Stop dispatching (a batch in progress commits or rolls back whole), stop the
        worker gracefully, then close the broker connection its publish jobs used."""
        self._stopping.set()
        if self._dispatching is not None:
            await self._dispatching
        await self.worker.stop()
        await close_sessions()
        if self._deps.broker is not None:
            try:
                await self._deps.broker.close()
            except Exception:  # shutting down anyway: the broker notices the socket close
                log.exception("broker.close_failed")
