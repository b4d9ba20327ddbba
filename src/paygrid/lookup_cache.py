"""Short-lived, per-process caches of rarely-changing lookups on the hot path (an API key's
principal, a merchant's routing rules and accounts), dropped across processes when the rows
change.

A write to a cached table sends ``NOTIFY paygrid_lookups, '<topic>'`` in its own statement,
so the notification exists exactly when the change commits. Each serving process LISTENs
(``paygrid.services.lookup_invalidation``) and drops that topic's entries; the TTL is a
backstop. A cache answers only while that LISTEN is up: without it a change could go
unheard, so every lookup goes to the database (as in tests that never start it).

This module sits beside ``clock.py``, below ``paygrid.dependencies``, whose ``Deps`` holds
one ``Lookups`` per process; it reads nothing but the injected clock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final, Generic, TypeVar

from paygrid.clock import SYSTEM_CLOCK, Clock

K = TypeVar("K")
V = TypeVar("V")

DEFAULT_TTL_SECONDS = 5.0
MAX_ENTRIES = 10_000  # per topic; past it the cache starts afresh rather than grow


class LookupCache(Generic[K, V]):
    """Values by key for ``ttl`` seconds of ``clock``, while ``owner`` is listening."""

    def __init__(self, owner: Lookups, ttl: float) -> None:
        self._owner = owner
        self._ttl = ttl
        self._entries: dict[K, tuple[float, V]] = {}
        self.generation = 0
        """Bumped by every invalidation: a value loaded before one must not be stored."""

    async def get_or_load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The cached value of ``key``, else ``load()``'s (stored unless a change came in
        meanwhile). An exception from ``load`` is not cached."""
        value = self.get(key)
        if value is None:
            generation = self.generation
            value = await load()
            self.put(key, value, generation)
        return value

    def get(self, key: K) -> V | None:
        if not self._owner.listening:
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._owner.clock.monotonic():
            del self._entries[key]
            return None
        return entry[1]

    def put(self, key: K, value: V, generation: int) -> None:
        """Store ``value``, loaded when the cache was at ``generation``; ignored if the rows
        changed since (the value may predate the change) or nobody listens for changes."""
        if generation != self.generation or not self._owner.listening:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = (self._owner.clock.monotonic() + self._ttl, value)

    def clear(self) -> None:
        self._entries.clear()
        self.generation += 1


class Lookups:
    """The lookup caches of one process, by topic, and their invalidation."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK, ttl: float = DEFAULT_TTL_SECONDS) -> None:
        self.clock = clock
        self._ttl = ttl
        self._caches: dict[str, LookupCache[Any, Any]] = {}
        self._listening: Callable[[], bool] = lambda: False

    @property
    def listening(self) -> bool:
        """Whether changes are heard now; until then (and while the LISTEN is down) every
        ``get`` misses and nothing is stored."""
        return self._listening()

    def heard_through(self, listening: Callable[[], bool]) -> None:
        """Whoever holds the LISTEN (``services.lookup_invalidation``) says how to tell it is
        up; it calls ``invalidate_all`` each time it (re)starts listening."""
        self._listening = listening

    def cache(self, topic: str) -> LookupCache[Any, Any]:
        """The cache of ``topic`` (the same object on every call); annotate its types where
        it is used, e.g. ``LookupCache[bytes, Principal]``."""
        existing = self._caches.get(topic)
        if existing is None:
            existing = self._caches[topic] = LookupCache(self, self._ttl)
        return existing

    def invalidate(self, topic: str) -> None:
        """Rows of ``topic`` changed somewhere: drop what this process holds of it."""
        cache = self._caches.get(topic)
        if cache is not None:
            cache.clear()

    def invalidate_all(self) -> None:
        """Changes may have gone unheard (the LISTEN was down): start afresh."""
        for cache in self._caches.values():
            cache.clear()


UNCACHED: Final = Lookups()
"""Caches that never answer (nobody listens for their changes): the default where none is
injected."""
