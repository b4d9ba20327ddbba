"""The write fence as one serving process holds it: an in-process flag that the HTTP edge
swaps its guard on, raised and lowered by the NOTIFY of ``db.fence`` on the process's
LISTEN hub (no query per request, nothing on the payment path), and read once at start-up
and each time the hub LISTENs again (a notification sent while it was reconnecting is not
lost). Lowering it first expires the pools' connections (a restore re-creates every table
and type, which asyncpg's per-connection statement and type caches would not know) and
drops the lookup caches, then reopens."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from paygrid.db import fence as fence_db
from paygrid.db.listener import Notifications, Subscription
from paygrid.dependencies import Deps

log = structlog.get_logger("paygrid.restore")

RESTORING = "restoring"
DEFAULT_RETRY_AFTER = 30


class WriteFence:
    """Whether this process is fenced (``raised``: the Retry-After to answer, else None).
    Whoever must act on a change registers with ``on_change`` (the HTTP edge swaps its
    guard, so an open fence costs a request nothing)."""

    def __init__(self) -> None:
        self.retry_after: int | None = None
        self._observers: list[Callable[[int | None], None]] = []

    @property
    def raised(self) -> bool:
        return self.retry_after is not None

    def on_change(self, observer: Callable[[int | None], None]) -> None:
        self._observers.append(observer)
        observer(self.retry_after)

    def set(self, retry_after: int | None) -> None:
        if retry_after == self.retry_after:
            return
        self.retry_after = retry_after
        log.warning("fence.raised" if retry_after is not None else "fence.lowered")
        for observer in self._observers:
            observer(retry_after)


class FenceWatch:
    """Keeps a ``WriteFence`` in step with the database's, on the LISTEN hub."""

    def __init__(self, fence: WriteFence, deps: Deps) -> None:
        self.fence = fence
        self.deps = deps
        self._tasks: set[asyncio.Task[None]] = set()
        self._subscription: Subscription | None = None

    async def start(self, notifications: Notifications) -> None:
        self._subscription = await notifications.subscribe(
            fence_db.CHANNEL, self._heard, on_listening=self._listening_again
        )
        await self.refresh()

    async def stop(self) -> None:
        if self._subscription is not None:
            await self._subscription.stop()
        for task in list(self._tasks):
            task.cancel()

    async def refresh(self) -> None:
        """Read the database's fence (at start-up, and after the LISTEN was lost)."""
        try:
            row = await fence_db.current(self.deps.pool)
        except Exception as error:  # database unreachable: keep what we knew
            log.warning("fence.refresh_failed", error=type(error).__name__)
            return
        if row is not None:
            self.fence.set(row.retry_after)
        elif self.fence.raised:
            await self._reopen()

    def _heard(self, payload: str) -> None:
        if payload == fence_db.LOWERED:
            self._spawn(self._reopen())
            return
        _, _, seconds = payload.partition(":")
        self.fence.set(int(seconds) if seconds.isdigit() else DEFAULT_RETRY_AFTER)

    def _listening_again(self) -> None:
        self._spawn(self.refresh())

    async def _reopen(self) -> None:
        if not self.fence.raised:
            return
        for pool in {self.deps.pool, self.deps.bookkeeping_pool}:
            await pool.expire_connections()
        self.deps.lookups.invalidate_all()
        self.fence.set(None)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name="fence watch")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
