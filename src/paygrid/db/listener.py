"""A ``LISTEN`` connection that survives database restarts.

A pool connection held for ``LISTEN`` dies with the server: asyncpg then takes it back into
the pool and no notification arrives again, so whoever waited on it falls back to polling
for good. ``Listener`` notices the loss (asyncpg's termination callback), reconnects with
capped exponential backoff, LISTENs again and tells its owner, who should then look for
work it may have missed meanwhile. It logs one warning when the connection is lost and one
line when it is back, however long the outage lasts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import asyncpg
import structlog
from asyncpg.pool import PoolConnectionProxy

log = structlog.get_logger("paygrid.db")

FIRST_RETRY_SECONDS = 0.1
MAX_RETRY_SECONDS = 2.0
"""Capped low: the embedded server is back within seconds, and a worker that is not
listening only polls. One failed connection attempt every 2 s costs nothing."""


def next_delay(previous: float) -> float:
    """Capped exponential backoff."""
    return min(previous * 2, MAX_RETRY_SECONDS)


class Listener:
    """``LISTEN channel`` on a connection held from ``pool`` between ``start`` and ``stop``;
    ``on_notify(payload)`` for each notification, and ``on_listening()`` each time the
    LISTEN is (re)established after a failure."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        channel: str,
        on_notify: Callable[[str], None],
        *,
        on_listening: Callable[[], None] = lambda: None,
        owner: str = "",
    ) -> None:
        self._pool = pool
        self._channel = channel
        self._on_notify = on_notify
        self._on_listening = on_listening
        self._owner = owner
        self._conn: PoolConnectionProxy[Any] | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._down_since: float | None = None

    @property
    def listening(self) -> bool:
        return self._conn is not None

    async def start(self) -> None:
        """Try to LISTEN now (so nothing committed after ``start`` returns is missed while
        the database is up), then keep listening in the background."""
        if not await self._connect():
            self._lost.set()
        self._task = asyncio.create_task(self._keep(), name=f"listen {self._channel}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):  # it may have died just now
            conn.remove_termination_listener(self._terminated)
            # The pool skips its reset on release, so UNLISTEN here or the connection keeps
            # receiving notifications for whoever borrows it next.
            await conn.remove_listener(self._channel, self._notified)
            await self._pool.release(conn)

    async def _keep(self) -> None:
        delay = FIRST_RETRY_SECONDS
        while True:
            await self._lost.wait()
            while not await self._connect():
                await asyncio.sleep(delay)
                delay = next_delay(delay)
            delay = FIRST_RETRY_SECONDS
            self._on_listening()

    async def _connect(self) -> bool:
        try:
            conn = await self._pool.acquire()
        except Exception as error:
            self._went_down(error)
            return False
        try:
            conn.add_termination_listener(self._terminated)
            await conn.add_listener(self._channel, self._notified)
        except Exception as error:
            self._went_down(error)
            with contextlib.suppress(Exception):
                conn.remove_termination_listener(self._terminated)
                await self._pool.release(conn)
            return False
        self._conn = conn
        self._lost.clear()
        if self._down_since is not None:
            down = asyncio.get_running_loop().time() - self._down_since
            log.info(
                "database.listen_restored",
                channel=self._channel,
                owner=self._owner,
                down_seconds=round(down, 1),
            )
            self._down_since = None
        return True

    def _went_down(self, error: BaseException | None) -> None:
        if self._down_since is not None:
            return  # already said so for this outage
        self._down_since = asyncio.get_running_loop().time()
        log.warning(
            "database.listen_lost",
            channel=self._channel,
            owner=self._owner,
            error=None if error is None else type(error).__name__,
        )

    def _terminated(self, _conn: object) -> None:
        # asyncpg takes the dead connection back into its pool itself: just forget it.
        self._conn = None
        self._went_down(None)
        self._lost.set()

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        self._on_notify(str(payload))
