"""The pool of paygrid's own pools: asyncpg's, with an idle connection released inline.

``asyncpg.Pool.release`` runs every release as ``asyncio.shield(holder.release(timeout))``:
a new Task, its futures and callbacks, a trip through the event loop and an
``asyncio.timeout``, for every statement run by ``pool.fetchrow`` & co. The shield is there
because the release may suspend (waiting for a cancelled query, a ``ROLLBACK``, the pool's
``reset`` coroutine), and a cancellation of the releasing task must not leave the connection
half-released. When the connection is idle and the pool's ``reset`` is ``skip_reset``,
nothing in the release suspends: ``InlineReleasePool`` then does what asyncpg's release does
in that case, synchronously, in the calling task; having no ``await``, it cannot be
interrupted by a cancellation, so there is nothing for the shield to protect. Only then does
it yield one turn of the loop (``release``), so the waiter it woke runs first. Every other
case goes to asyncpg's ``release`` (issue 12: ~14 µs less CPU per statement under uvloop;
``tests/integration/test_pool_release.py`` has the numbers).

Relies on asyncpg 0.32.0's internals (``asyncpg/pool.py``, ``asyncpg/connection.py``); the
test above fails on another version, to have them re-read:

- ``Pool.release``: checks that the proxy is this pool's (``_holder._pool``) and not released
  (``_con``), ``_check_init()``, ``Connection._on_release()``, then shields
  ``PoolConnectionHolder.release(timeout)``, ``timeout`` defaulting to the acquire's
  (``holder._timeout``).
- ``PoolConnectionHolder.release(None)`` suspends only (a) to close a connection at
  ``_max_queries`` or of an older ``_generation`` (``expire_connections``), (b) to wait for
  a cancellation in flight (``_protocol._is_cancelling()``), (c) in ``Connection._reset()``,
  which sends ``ROLLBACK`` when ``_protocol.is_in_transaction()`` or ``_top_xact`` is set,
  and (d) in the pool's ``reset``. A closed connection is terminated (left to asyncpg here).
  Otherwise it sets ``_timeout = None``; ``Connection._reset()`` clears ``_listeners`` and
  ``_log_listeners``; ``_release()`` frees the holder, detaches the proxy and puts the holder
  back in the pool's queue; ``_setup_inactive_callback()`` re-arms the inactivity timer. Those
  are the steps ``_release_idle`` takes.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from paygrid.db.executor import Connection


async def skip_reset(conn: Connection) -> None:
    """The ``reset`` of paygrid's pools: skip asyncpg's per-release ``RESET ALL``. The only
    session state paygrid sets is the audit context, which ``audit.apply_context`` replaces
    on every acquire that needs another, and the reset would be a round trip on every
    request. It never suspends, which ``InlineReleasePool`` relies on."""


class InlineReleasePool(asyncpg.Pool):
    """``asyncpg.Pool`` whose ``release`` of an idle connection runs in the calling task
    (see the module's docstring); build it with ``open_pool``."""

    __slots__ = ()

    async def release(
        self,
        connection: PoolConnectionProxy,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (asyncpg's signature)
    ) -> None:
        if timeout is None and self._idle(connection):
            self._release_idle(connection)
            # One turn of the loop, as asyncpg's release takes: the task the release woke
            # for this connection runs before this one can take it back. Without it, a
            # woken waiter that found the queue empty again re-queued at the back
            # (``asyncio.Queue.get``), and under saturation p99 latency doubled (bench/
            # README.md). Cancelled here, the connection is back in the pool already.
            await asyncio.sleep(0)
            return
        await super().release(connection, timeout=timeout)

    def _release_idle(self, connection: PoolConnectionProxy) -> None:
        """asyncpg's release of an idle connection (module docstring), minus the shield and
        the awaits of what does not suspend: synchronous, so no cancellation can stop it
        half-way, which is what the shield is for."""
        pool: Any = self  # the stubs leave out the private attributes
        proxy: Any = connection
        holder, con = proxy._holder, proxy._con
        pool._check_init()
        con._on_release()
        holder._timeout = None
        con._listeners.clear()
        con._log_listeners.clear()
        holder._release()
        holder._setup_inactive_callback()

    def _idle(self, connection: PoolConnectionProxy) -> bool:
        """Whether releasing ``connection`` cannot suspend: this pool's, checked out, open,
        idle (no transaction, no cancellation in flight), neither at ``max_queries`` nor
        expired, no acquire timeout, and the pool's ``reset`` is ``skip_reset``."""
        pool: Any = self
        if type(connection) is not PoolConnectionProxy or pool._reset is not skip_reset:
            return False
        proxy: Any = connection
        holder, con = proxy._holder, proxy._con
        return bool(
            con is not None
            and holder._pool is self
            and holder._con is con
            and holder._in_use is not None
            and holder._timeout is None
            and holder._generation == pool._generation
            and not con.is_closed()
            and con._protocol.queries_count < holder._max_queries
            and not con._protocol._is_cancelling()
            and not con._protocol.is_in_transaction()
            and con._top_xact is None
        )


# ``asyncpg.create_pool``'s defaults: it passes them, and its arguments, on to ``Pool(...)``.
_CREATE_POOL_DEFAULTS = {
    name: parameter.default
    for name, parameter in inspect.signature(asyncpg.create_pool).parameters.items()
    if parameter.kind is inspect.Parameter.KEYWORD_ONLY
}


async def open_pool(dsn: str, **kwargs: Any) -> InlineReleasePool:
    """``await asyncpg.create_pool(dsn, **kwargs)``, as an ``InlineReleasePool``."""
    return await InlineReleasePool(dsn, **(_CREATE_POOL_DEFAULTS | kwargs))
