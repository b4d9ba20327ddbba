"""Rate limits per client IP, per API key and per customer's payment creations.

Counted with the ``limits`` library's moving window (at most N requests in any window of
the configured length): in process memory, or in Redis when ``PAYGRID_REDIS_URL`` is set, so
that every API process shares the counts. The middleware runs after ``ApiKeyAuth`` (it needs
the key) and before ``Idempotency`` and the handlers, so a request over a limit is answered
``429 rate_limit_exceeded`` with ``Retry-After`` before anything is written.
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
from starlette.types import ASGIApp, Receive, Scope, Send

from paygrid.api.middleware import header, send_error, state
from paygrid.config import Settings
from paygrid.domain.errors import RateLimited
from paygrid.services.merchants import Principal

log = structlog.get_logger("paygrid.http")
EXEMPT_PATHS = frozenset({"/healthz", "/readyz"})
PAYMENTS_PATH = "/v1/payments"
STORAGE_RETRY_SECONDS = 5.0  # after a storage failure, requests skip the limits this long

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
    """The ``customer`` a payment creation names, read from the body BodyGuard buffered."""
    if scope["method"] != "POST" or scope["path"] != PAYMENTS_PATH:
        return None
    try:
        body: Any = orjson.loads(state(scope).get("body") or b"")
    except orjson.JSONDecodeError:
        return None  # the handler rejects it; nothing to count
    customer = body.get("customer") if isinstance(body, dict) else None
    # No id is this long; the handler rejects it, and it should not become a storage key.
    return customer if isinstance(customer, str) and 0 < len(customer) <= 255 else None


class RateLimits:
    """Two instances run: ``stage="ip"`` before authentication, so a flood of bad keys is
    limited before each costs a key lookup, and ``stage="key"`` after it, for the per-key
    and per-customer limits."""

    def __init__(
        self, app: ASGIApp, settings: Settings, storage: Storage, stage: str = "key"
    ) -> None:
        self.app = app
        self.stage = stage
        self.limiter = MovingWindowRateLimiter(storage)
        self.per_ip = limits.parse(settings.rate_limit_per_ip)
        self.per_key = limits.parse(settings.rate_limit_per_key)
        self.per_customer = limits.parse(settings.rate_limit_payments_per_customer)
        self.trusted_proxy = settings.trusted_proxy
        self.storage_down_until = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        error = await self._exceeded(self._checks(scope))
        if error is not None:
            log.info("request.rate_limited", reason=error.message)
            await send_error(scope, send, error)
            return
        await self.app(scope, receive, send)

    def _checks(self, scope: Scope) -> list[Check]:
        if self.stage == "ip":
            return [(self.per_ip, ("ip", client_ip(scope, self.trusted_proxy)), "this IP address")]
        checks: list[Check] = []
        principal: Principal | None = state(scope).get("principal")
        if principal is None:
            return checks
        checks.append((self.per_key, ("key", principal.key_id), "this API key"))
        customer = payment_customer(scope)
        if customer is not None:
            mode = "live" if principal.livemode else "test"
            counter = ("customer", principal.merchant_id, mode, customer)
            checks.append((self.per_customer, counter, f"payments for customer {customer}"))
        return checks

    async def _exceeded(self, checks: list[Check]) -> RateLimited | None:
        if time.monotonic() < self.storage_down_until:
            return None
        try:
            for item, counter, subject in checks:
                if await self.limiter.hit(item, *counter):
                    continue
                stats = await self.limiter.get_window_stats(item, *counter)
                # The limits library stamps its windows with time.time() itself; Retry-After
                # must be measured on the same clock.
                retry_after = max(1, math.ceil(stats.reset_time - time.time()))  # noqa: TID251
                return RateLimited(
                    f"Too many requests for {subject} (at most {item}). "
                    f"Retry after {retry_after} s.",
                    retry_after=retry_after,
                )
        except StorageError:
            # Fail open, and for a while without waiting on the storage again: an unreachable
            # Redis must not take the payment API down with it.
            log.warning("rate_limits.storage_unavailable", exc_info=True)
            self.storage_down_until = time.monotonic() + STORAGE_RETRY_SECONDS
        return None
