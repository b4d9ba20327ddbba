"""The write fence as one serving process holds it: an in-process flag that the HTTP edge
swaps its guard on, raised and lowered by the NOTIFY of ``db.fence`` on the process's
LISTEN hub (no query per request, nothing on the payment path), and read once at start-up
and each time the hub LISTENs again (a notification sent while it was reconnecting is not
lost). Lowering it first expires the pools' connections (a restore re-creates every table
and type, which asyncpg's per-connection statement and type caches would not know) and
drops the lookup caches, then reopens.

The drain acknowledgment (``db.fence``): the watch registers its process (host, pid and a
boot id drawn per watch) on the hub's own connection, again after each reconnect (which
replaces its row), and once it hears the fence raised it reports what the process has in
flight (the fence's ``in_flight`` counters: the HTTP edge's requests, the worker's jobs
and claims) each time that changes, polled in process every ``REPORT_SECONDS``, for as
long as the fence is raised: a count that rises again after 0 is reported, and the restore
waits again. ``paygrid restore`` waits for 0 before touching the data. At start the order
is subscribe, register, read the fence, so a process registered after the restore's last
look starts fenced; a hub that cannot connect at start is logged as an error, and the
process registers once it connects."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

import structlog

from paygrid.db import fence as fence_db
from paygrid.db.listener import Notifications, Subscription
from paygrid.dependencies import Deps

log = structlog.get_logger("paygrid.restore")

RESTORING = "restoring"
DEFAULT_RETRY_AFTER = 30
REPORT_SECONDS = 0.2


class WriteFence:
    """Whether this process is fenced (``raised``: the Retry-After to answer, else None).
    Whoever must act on a change registers with ``on_change`` (the HTTP edge swaps its
    guard, so an open fence costs a request nothing). Whoever runs requests or jobs adds
    a counter of those in flight with ``count``; the restore waits for their sum to be 0."""

    def __init__(self) -> None:
        self.retry_after: int | None = None
        self._observers: list[Callable[[int | None], None]] = []
        self._counters: list[Callable[[], int]] = []

    @property
    def raised(self) -> bool:
        return self.retry_after is not None

    @property
    def in_flight(self) -> int:
        """The requests and jobs this process has in flight now."""
        return sum(counter() for counter in self._counters)

    def count(self, counter: Callable[[], int]) -> None:
        self._counters.append(counter)

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
    """Keeps a ``WriteFence`` in step with the database's, on the LISTEN hub, and reports
    this process's drain to the restore."""

    def __init__(
        self,
        fence: WriteFence,
        deps: Deps,
        role: fence_db.ProcessRole,
        boot_id: str | None = None,
    ) -> None:
        self.fence = fence
        self.deps = deps
        self.role = role
        self.process = fence_db.ProcessId(
            socket.gethostname(), os.getpid(), boot_id or uuid.uuid4().hex
        )
        self.backend: fence_db.Backend | None = None
        """The backend this process is registered under (its hub's connection)."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._subscription: Subscription | None = None
        self._notifications: Notifications | None = None
        self._raised_at: datetime | None = None
        self._reporting: asyncio.Task[None] | None = None
        self._report_again = False

    async def start(self, notifications: Notifications) -> None:
        self._notifications = notifications
        self._subscription = await notifications.subscribe(
            fence_db.CHANNEL, self._heard, on_listening=self._listening_again
        )
        if not notifications.listening:
            log.error(
                "fence.unregistered",
                reason="the LISTEN hub could not connect: a restore does not wait for this "
                "process until it does (it registers then)",
            )
        await self.register()
        await self.refresh()

    async def stop(self) -> None:
        if self._subscription is not None:
            await self._subscription.stop()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        # A registration under way must not write its row after it was deleted.
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.backend is not None:
            self.backend = None
            try:
                await fence_db.unregister_process(self.deps.pool, self.process)
            except Exception as error:  # stopping anyway: its row is swept once lost
                log.warning("fence.unregister_failed", error=type(error).__name__)

    async def register(self) -> None:
        """Register on the hub's current connection (a report follows if raised)."""
        hub = self._notifications
        if hub is None or not hub.listening:
            return  # registered once it listens (again)
        try:
            registered = await fence_db.register_process(
                hub, self.process, self.role, self.deps.clock.now()
            )
        except Exception as error:  # database unreachable: again when the hub is back
            log.warning("fence.register_failed", error=type(error).__name__)
            return
        if registered is fence_db.Unregistered.NO_ROW:
            log.error("fence.unregistered", reason="registering wrote no row")
        if isinstance(registered, fence_db.Unregistered):
            return  # NO_TABLE: before migration 0031; NOT_LISTENING: again once it does
        self.backend = registered
        self._report_again = True

    async def refresh(self) -> None:
        """Read the database's fence (at start-up, on a raise, after the LISTEN was lost)."""
        try:
            row = await fence_db.current(self.deps.pool)
        except Exception as error:  # database unreachable: keep what we knew
            log.warning("fence.refresh_failed", error=type(error).__name__)
            return
        if row is not None:
            self.fence.set(row.retry_after)
            self._report(row.raised_at)
        elif self.fence.raised:
            await self._reopen()

    def _heard(self, payload: str) -> None:
        if payload == fence_db.LOWERED:
            self._spawn(self._reopen())
            return
        _, _, seconds = payload.partition(":")
        self.fence.set(int(seconds) if seconds.isdigit() else DEFAULT_RETRY_AFTER)
        self._spawn(self.refresh())  # its raised_at, which the drain is reported for

    def _listening_again(self) -> None:
        self._spawn(self._rejoin())

    async def _rejoin(self) -> None:
        await self.register()
        await self.refresh()

    def _report(self, raised_at: datetime) -> None:
        if raised_at != self._raised_at:
            self._raised_at, self._report_again = raised_at, True
        if self._reporting is None or self._reporting.done():
            self._reporting = self._spawn(self._report_drain())

    async def _report_drain(self) -> None:
        """Report the in-flight count each time it changes, for as long as the fence is
        raised (a count that rises again after 0 is reported: the restore waits again)."""
        reported: int | None = None
        while self.fence.raised and self._raised_at is not None:
            in_flight = self.fence.in_flight
            if in_flight != reported or self._report_again:
                self._report_again = False
                sent = await self._send(self._raised_at, in_flight)
                if sent and in_flight == 0 and reported != 0:
                    log.info("fence.drained", raised_at=self._raised_at.isoformat())
                reported = in_flight if sent else None
            await asyncio.sleep(REPORT_SECONDS)

    async def _send(self, raised_at: datetime, in_flight: int) -> bool:
        if self.backend is None:
            await self.register()  # e.g. the restore has just created the table, or swept it
            self._report_again = False  # this report is the one registering asked for
        if self.backend is None:
            return False
        try:
            sent = await fence_db.report_in_flight(
                self.deps.pool, self.process, raised_at, in_flight, self.deps.clock.now()
            )
        except Exception as error:  # database unreachable: tried again next time
            log.warning("fence.report_failed", error=type(error).__name__)
            return False
        if not sent:  # swept meanwhile (lost past the grace period): register again
            self.backend = None
        return sent

    async def _reopen(self) -> None:
        if not self.fence.raised:
            return
        for pool in {self.deps.pool, self.deps.bookkeeping_pool}:
            await pool.expire_connections()
        self.deps.lookups.invalidate_all()
        self.fence.set(None)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work, name="fence watch")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
