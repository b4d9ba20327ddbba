"""Rate limits per client IP, per API key and per customer's payment creations.

In process memory, a fixed window per counter that opens at its first request (at most N
requests until it closes; a refused request is not counted), in one dict with no lock and
no thread: the event loop runs one check at a time. With ``PAYGRID_REDIS_URL`` set, the
``limits`` library's moving window in Redis, so that every API process shares the counts.
The HTTP edge (``api/edge.py``) checks the IP before authentication and the key and
customer after it, before ``Idempotency`` and the handlers, so a request over a limit is
answered ``429 rate_limit_exceeded`` with ``Retry-After`` before anything is written.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import limits
import orjson
import structlog
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.storage.redis.coredis import CoredisBridge
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from starlette.types import Scope

from paygrid.api.middleware import header, state
from paygrid.clock import SYSTEM_CLOCK, Clock
from paygrid.config import Settings
from paygrid.domain.errors import RateLimited
from paygrid.services.merchants import Principal

log = structlog.get_logger("paygrid.http")
EXEMPT_PATHS = frozenset({"/healthz", "/readyz"})
PAYMENTS_PATH = "/v1/payments"
STORAGE_RETRY_SECONDS = 5.0  # after a storage failure, requests skip the limits this long
SWEEP_SECONDS = 60.0  # how often closed windows are dropped from memory

# One limit to check: the limit, whose counter it is, and how the error names it.
Check = tuple[limits.RateLimitItem, tuple[str, ...], str]


def storage_for(settings: Settings) -> Storage:
    """Redis when configured (shared by all processes), else this process's memory."""
    if settings.redis_url is None:
        return MemoryStorage()
    return RedisStorage(
        "async+" + settings.redis_url.get_secret_value(),
        key_prefix=settings.redis_key_prefix,
        wrap_exceptions=True,
        # A Redis that hangs must not hang the API: the limits fail open after this.
        connect_timeout=1.0,
        stream_timeout=1.0,
    )


async def close_storage(storage: Storage) -> None:
    """Close a Redis storage's connections (``limits`` has no call for it); memory needs none."""
    if isinstance(storage, RedisStorage) and isinstance(storage.bridge, CoredisBridge):
        storage.bridge.storage.connection_pool.disconnect()
        await asyncio.sleep(0)  # the transports finish closing on the next loop iteration


def client_ip(scope: Scope, trusted_proxy: bool) -> str:
    """The peer address, or behind a trusted proxy the address that proxy appended last
    (earlier X-Forwarded-For entries come from the client and can be forged)."""
    if trusted_proxy:
        forwarded = header(scope, b"x-forwarded-for")
        if forwarded and forwarded.split(",")[-1].strip():
            return forwarded.split(",")[-1].strip()
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def payment_customer(scope: Scope) -> str | None:
    """The ``customer`` a payment creation names, read from the body the edge buffered."""
    if scope["method"] != "POST" or scope["path"] != PAYMENTS_PATH:
        return None
    try:
        body: Any = orjson.loads(state(scope).get("body") or b"")
    except orjson.JSONDecodeError:
        return None  # the handler rejects it; nothing to count
    customer = body.get("customer") if isinstance(body, dict) else None
    # No id is this long; the handler rejects it, and it should not become a storage key.
    return customer if isinstance(customer, str) and 0 < len(customer) <= 255 else None


class FixedWindows:
    """In-memory counters: ``hit`` counts a request unless its counter's window is full."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._windows: dict[tuple[str, ...], list[float]] = {}  # counter -> [closes at, count]
        self._next_sweep = clock.monotonic() + SWEEP_SECONDS

    def hit(self, item: limits.RateLimitItem, counter: tuple[str, ...]) -> float | None:
        """``None`` if the request is counted, else the seconds until its window closes."""
        now = self._clock.monotonic()
        window = self._windows.get(counter)
        if window is None or window[0] <= now:
            self._windows[counter] = [now + item.get_expiry(), 1]
            if now >= self._next_sweep:
                self._sweep(now)
            return None
        if window[1] >= item.amount:
            return window[0] - now
        window[1] += 1
        return None

    def _sweep(self, now: float) -> None:
        self._windows = {c: w for c, w in self._windows.items() if w[0] > now}
        self._next_sweep = now + SWEEP_SECONDS


class RateLimits:
    """The API's limits: ``for_ip`` before authentication, so a flood of bad keys is limited
    before each costs a key lookup, and ``for_key`` after it, for the per-key and
    per-customer limits. Each returns the error to answer with, or ``None``."""

    def __init__(self, settings: Settings, storage: Storage, clock: Clock = SYSTEM_CLOCK) -> None:
        self.per_ip = limits.parse(settings.rate_limit_per_ip)
        self.per_key = limits.parse(settings.rate_limit_per_key)
        self.per_customer = limits.parse(settings.rate_limit_payments_per_customer)
        self.trusted_proxy = settings.trusted_proxy
        # Memory storage: counted here (the ``limits`` storage stays for the dashboard's
        # login limits). Redis: counted there, shared by every process.
        self._local = FixedWindows(clock) if isinstance(storage, MemoryStorage) else None
        self._shared = MovingWindowRateLimiter(storage)
        self.storage_down_until = 0.0

    async def for_ip(self, scope: Scope) -> RateLimited | None:
        if scope["path"] in EXEMPT_PATHS:
            return None
        ip = client_ip(scope, self.trusted_proxy)
        return await self._exceeded([(self.per_ip, ("ip", ip), "this IP address")])

    async def for_key(self, scope: Scope, principal: Principal) -> RateLimited | None:
        if scope["path"] in EXEMPT_PATHS:
            return None
        checks: list[Check] = [(self.per_key, ("key", principal.key_id), "this API key")]
        customer = payment_customer(scope)
        if customer is not None:
            mode = "live" if principal.livemode else "test"
            counter = ("customer", principal.merchant_id, mode, customer)
            checks.append((self.per_customer, counter, f"payments for customer {customer}"))
        return await self._exceeded(checks)

    async def _exceeded(self, checks: list[Check]) -> RateLimited | None:
        if self._local is None:
            return await self._exceeded_shared(checks)
        for item, counter, subject in checks:
            wait = self._local.hit(item, counter)
            if wait is not None:
                return _refusal(item, subject, wait)
        return None

    async def _exceeded_shared(self, checks: list[Check]) -> RateLimited | None:
        if time.monotonic() < self.storage_down_until:
            return None
        try:
            for item, counter, subject in checks:
                if await self._shared.hit(item, *counter):
                    continue
                stats = await self._shared.get_window_stats(item, *counter)
                # The limits library stamps its windows with time.time() itself; Retry-After
                # must be measured on the same clock.
                return _refusal(item, subject, stats.reset_time - time.time())  # noqa: TID251
        except StorageError:
            # Fail open, and for a while without waiting on the storage again: an unreachable
            # Redis must not take the payment API down with it.
            log.warning("rate_limits.storage_unavailable", exc_info=True)
            self.storage_down_until = time.monotonic() + STORAGE_RETRY_SECONDS
        return None


def _refusal(item: limits.RateLimitItem, subject: str, wait: float) -> RateLimited:
    retry_after = max(1, math.ceil(wait))
    error = RateLimited(
        f"Too many requests for {subject} (at most {item}). Retry after {retry_after} s.",
        retry_after=retry_after,
    )
    log.info("request.rate_limited", reason=error.message)
    return error
