"""One ``LISTEN`` connection per process, for all its channels, that survives database
restarts.

PostgreSQL wakes every backend that listens in the database on every commit that sends a
NOTIFY, whatever the channel (each then reads the queue and drops what it does not listen
to): about 20-27 µs of server CPU per listening connection per notifying commit. So a
process holds one ``Notifications`` hub, started by the composition root, and the job
worker, the event dispatcher and the lookup caches subscribe to their channels on it,
instead of each holding a connection of its own.

A pool connection held for ``LISTEN`` dies with the server: asyncpg then takes it back into
the pool and no notification arrives again, so whoever waited on it falls back to polling
for good. The hub notices the loss (asyncpg's termination callback), reconnects with capped
exponential backoff, LISTENs again on every subscribed channel and tells each subscriber,
who should then look for work it may have missed meanwhile. It logs one warning when the
connection is lost and one line when it is back, however long the outage lasts."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg
import structlog

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

log = structlog.get_logger("paygrid.db")

FIRST_RETRY_SECONDS = 0.1
MAX_RETRY_SECONDS = 2.0
"""Capped low: the embedded server is back within seconds, and a worker that is not
listening only polls. One failed connection attempt every 2 s costs nothing."""

Connection: TypeAlias = "PoolConnectionProxy[Any]"


def next_delay(previous: float) -> float:
    """Capped exponential backoff."""
    return min(previous * 2, MAX_RETRY_SECONDS)


class NotListening(Exception):
    """The hub has no connection now (it is reconnecting, or never connected yet)."""


def _nothing() -> None:
    return None


class Subscription:
    """``on_notify(payload)`` for each notification on ``channel``, and ``on_listening()``
    each time the hub LISTENs again after losing its connection, until ``stop``."""

    def __init__(
        self,
        hub: Notifications,
        channel: str,
        on_notify: Callable[[str], None],
        on_listening: Callable[[], None],
    ) -> None:
        self.channel = channel
        self.on_notify = on_notify
        self.on_listening = on_listening
        self._hub = hub
        self.active = True

    @property
    def listening(self) -> bool:
        """Whether a notification on the channel reaches ``on_notify`` now."""
        return self.active and self._hub.listening

    async def stop(self) -> None:
        """Hear nothing more on the channel. Safe to call twice."""
        await self._hub.unsubscribe(self)


class Notifications:
    """``LISTEN`` for any number of subscribers, on one connection held from ``pool``
    between ``start`` and ``stop``."""

    def __init__(self, pool: asyncpg.Pool, *, owner: str = "") -> None:
        self._pool = pool
        self._owner = owner
        self._subscribers: dict[str, list[Subscription]] = {}
        self._conn: Connection | None = None
        self._on_terminated: Callable[[object], None] = lambda _conn: None
        # Held while the connection's set of LISTENed channels changes, so a subscription
        # made during a reconnect is LISTENed on the new connection either way.
        self._changing = asyncio.Lock()
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._down_since: float | None = None

    @property
    def listening(self) -> bool:
        return self._conn is not None

    @property
    def server_pid(self) -> int | None:
        """The backend pid of the LISTEN connection while it is up (the restore's drain
        registers a process under it: its liveness is the connection's)."""
        conn = self._conn
        return None if conn is None else conn.get_server_pid()

    async def on_connection(self, query: str, *args: object) -> asyncpg.Record | None:
        """Run one statement on the LISTEN connection itself (what must be tied to its
        backend: the restore's drain registers the process there, ``db.fence``); its row.
        ``NotListening`` while the hub has no connection."""
        async with self._changing:  # never alongside a LISTEN on the same connection
            conn = self._conn
            if conn is None:
                raise NotListening(self._owner)
            return await conn.fetchrow(query, *args)

    async def start(self) -> None:
        """Try to connect now (so nothing committed after a ``subscribe`` returns is missed
        while the database is up), then keep the connection in the background."""
        if await self._connect():
            self._listening_again()  # whoever subscribed before start may have missed some
        else:
            self._lost.set()
        self._task = asyncio.create_task(self._keep(), name=f"listen {self._owner}")

    async def subscribe(
        self,
        channel: str,
        on_notify: Callable[[str], None],
        *,
        on_listening: Callable[[], None] = _nothing,
    ) -> Subscription:
        """LISTEN on ``channel`` (at once if the connection is up, else once it is back,
        which ``on_listening`` then reports)."""
        subscription = Subscription(self, channel, on_notify, on_listening)
        async with self._changing:
            subscribers = self._subscribers.setdefault(channel, [])
            subscribers.append(subscription)
            conn = self._conn
            if len(subscribers) == 1 and conn is not None:
                try:
                    await conn.add_listener(channel, self._notified)
                except BaseException as error:  # reconnect: that LISTENs on every channel
                    self._abandon(conn, error)
                    if not isinstance(error, Exception):  # cancelled: nobody will stop it
                        subscription.active = False
                        subscribers.remove(subscription)
                        raise
        return subscription

    async def unsubscribe(self, subscription: Subscription) -> None:
        async with self._changing:
            if not subscription.active:
                return
            subscription.active = False
            subscribers = self._subscribers[subscription.channel]
            subscribers.remove(subscription)
            if subscribers:
                return
            del self._subscribers[subscription.channel]
            if self._conn is not None:
                with contextlib.suppress(Exception):  # it may have died just now
                    await self._conn.remove_listener(subscription.channel, self._notified)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        async with self._changing:
            conn, self._conn = self._conn, None
            if conn is None:
                return
            try:
                conn.remove_termination_listener(self._on_terminated)
                # The pool skips its reset on release, so UNLISTEN here or the connection
                # keeps receiving notifications for whoever borrows it next.
                for channel in self._subscribers:
                    await conn.remove_listener(channel, self._notified)
                await self._pool.release(conn)
            except Exception:  # it may have died just now
                _discard(conn, self._on_terminated)

    async def _keep(self) -> None:
        delay = FIRST_RETRY_SECONDS
        while True:
            await self._lost.wait()
            while not await self._connect():
                await asyncio.sleep(delay)
                delay = next_delay(delay)
            delay = FIRST_RETRY_SECONDS
            self._listening_again()

    def _listening_again(self) -> None:
        for subscribers in list(self._subscribers.values()):
            for subscription in list(subscribers):
                subscription.on_listening()

    async def _connect(self) -> bool:
        try:
            conn: Connection = await self._pool.acquire()
        except Exception as error:
            self._went_down(error)
            return False
        terminated = functools.partial(self._terminated, conn)
        async with self._changing:
            try:
                conn.add_termination_listener(terminated)
                for channel in self._subscribers:
                    await conn.add_listener(channel, self._notified)
            except BaseException as error:  # cancelled (stop) too: the connection is ours
                _discard(conn, terminated)
                if not isinstance(error, Exception):
                    raise
                self._went_down(error)
                return False
            self._conn, self._on_terminated = conn, terminated
            self._lost.clear()
        self._restored()
        return True

    def _restored(self) -> None:
        if self._down_since is None:
            return
        down = asyncio.get_running_loop().time() - self._down_since
        log.info(
            "database.listen_restored",
            channels=sorted(self._subscribers),
            owner=self._owner,
            down_seconds=round(down, 1),
        )
        self._down_since = None

    def _went_down(self, error: BaseException | None) -> None:
        if self._down_since is not None:
            return  # already said so for this outage
        self._down_since = asyncio.get_running_loop().time()
        log.warning(
            "database.listen_lost",
            channels=sorted(self._subscribers),
            owner=self._owner,
            error=None if error is None else type(error).__name__,
        )

    def _abandon(self, conn: Connection, error: BaseException) -> None:
        """Give up a connection that failed to LISTEN and reconnect."""
        self._went_down(error)
        _discard(conn, self._on_terminated)
        self._forget()

    def _terminated(self, conn: Connection, _conn: object) -> None:
        # asyncpg takes the dead connection back into its pool itself: just forget it. A
        # late callback from a connection already replaced changes nothing.
        if conn is self._conn:
            self._went_down(None)
            self._forget()

    def _forget(self) -> None:
        self._conn = None
        self._lost.set()

    def _notified(self, _conn: object, _pid: int, channel: str, payload: object) -> None:
        for subscription in tuple(self._subscribers.get(channel, ())):
            try:
                subscription.on_notify(str(payload))
            except Exception:  # one subscriber's bug must not deafen the others
                log.exception("database.notification_failed", channel=channel)


def _discard(conn: Connection, terminated: Callable[[object], None]) -> None:
    """Close a connection that may LISTEN on some channels rather than lend it out again."""
    with contextlib.suppress(Exception):  # it may have died, and left the pool, already
        conn.remove_termination_listener(terminated)
        conn.terminate()
