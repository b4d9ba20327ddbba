"""Everything a worker process runs: the job worker (on the default and webhooks queues)
and the outbox dispatcher that turns committed events into webhook deliveries."""

from __future__ import annotations

import asyncio

from paygrid.config import Settings
from paygrid.db.jobs import DEFAULT_QUEUE
from paygrid.services.context import Deps
from paygrid.webhooks.delivery import QUEUE as WEBHOOKS_QUEUE
from paygrid.webhooks.dispatcher import EventDispatcher
from paygrid.worker.kinds import standard_registry
from paygrid.worker.runner import Worker, WorkerConfig

QUEUES = (DEFAULT_QUEUE, WEBHOOKS_QUEUE)


class Background:
    """Start and stop the job worker and the event dispatcher together."""

    def __init__(self, deps: Deps, settings: Settings, queues: tuple[str, ...] = QUEUES) -> None:
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
        """Stop dispatching (a batch in progress commits or rolls back whole), then stop the
        worker gracefully."""
        self._stopping.set()
        if self._dispatching is not None:
            await self._dispatching
        await self.worker.stop()
