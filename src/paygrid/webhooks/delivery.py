"""Deliver one event to one endpoint: the ``webhooks.deliver`` job.

Each job makes one attempt. The attempt is recorded, and the next attempt (if any) is
enqueued, in the same transaction, so a crash can repeat an attempt (at least once) but
never lose a delivery. A job re-run after its worker died repeats the same attempt number;
``claim_attempt`` keeps two jobs from making different attempts of one delivery at once.
"""

from __future__ import annotations

import time
import weakref
from asyncio import AbstractEventLoop, get_running_loop
from datetime import datetime, timedelta
from typing import Any, Final

import aiohttp
import structlog
import yarl

from paygrid.db import jobs as jobs_db
from paygrid.db import webhooks as webhooks_db
from paygrid.db.webhooks import DeliveryContext
from paygrid.dependencies import Deps
from paygrid.domain import url_safety
from paygrid.domain.url_safety import Reach
from paygrid.domain.webhooks import DeliveryStatus, DisabledReason, EndpointStatus
from paygrid.ids import milliseconds_of, new_id
from paygrid.schemas.common import unix
from paygrid.schemas.events import Event, EventData
from paygrid.webhooks import signing
from paygrid.webhooks.destinations import (
    AddressNotAllowed,
    GuardedResolver,
    HostResolver,
    UnsafeDestination,
    check_shape,
)
from paygrid.webhooks.retries import Decision, Outcome, decide
from paygrid.worker.registry import JobContext

DELIVER: Final = "webhooks.deliver"
QUEUE: Final = "webhooks"
PAUSED_RECHECK: Final = timedelta(seconds=30)
# A first attempt waiting for an earlier event of its object to be sent first looks again
# this much later (the earlier one is usually in flight already).
ORDER_RECHECK: Final = timedelta(milliseconds=100)
RESPONSE_PREFIX_BYTES: Final = 1024
USER_AGENT: Final = "paygrid-webhooks/1"
log = structlog.get_logger("paygrid.webhooks")
_sessions: weakref.WeakKeyDictionary[
    AbstractEventLoop, dict[tuple[HostResolver, frozenset[str]], aiohttp.ClientSession]
] = weakref.WeakKeyDictionary()


def deliver_payload(delivery_id: str, endpoint_id: str, attempt: int) -> dict[str, Any]:
    return {"delivery_id": delivery_id, "endpoint_id": endpoint_id, "attempt": attempt}


async def deliver(payload: dict[str, Any], context: JobContext) -> None:
    """Make attempt ``payload["attempt"]`` of a delivery."""
    deps = context.deps
    delivery_id, attempt = str(payload["delivery_id"]), int(payload["attempt"])
    claimed = await webhooks_db.claim_attempt(deps.pool, delivery_id, attempt)
    if claimed is not None:
        await _attempt(deps, claimed, attempt)
        return
    row = await webhooks_db.delivery_context(deps.pool, delivery_id)
    if row is None or row.status is not DeliveryStatus.PENDING:
        return
    if row.endpoint_deleted or row.endpoint_status is not EndpointStatus.ENABLED:
        await webhooks_db.fail_delivery(deps.pool, delivery_id, deps.clock.now())
        return
    if row.paused:
        await jobs_db.enqueue(
            deps.pool, DELIVER, payload, queue=QUEUE, run_at=deps.clock.now() + PAUSED_RECHECK
        )
        return
    if attempt == 1 and row.attempt_count == 0:
        if await webhooks_db.waits_for_earlier(deps.pool, delivery_id):
            # An earlier event of the same object goes to this endpoint first.
            run_at = deps.clock.now() + ORDER_RECHECK
            await jobs_db.enqueue(deps.pool, DELIVER, payload, queue=QUEUE, run_at=run_at)
        else:  # the earlier one got there between the claim and this check
            await jobs_db.enqueue(deps.pool, DELIVER, payload, queue=QUEUE, run_at=deps.clock.now())
        return
    # Otherwise the delivery is pending at another attempt number: this job is stale.


async def _attempt(deps: Deps, row: DeliveryContext, attempt: int) -> None:
    now = deps.clock.now()
    body = (
        Event(
            id=row.event_id,
            type=row.event_type,
            created=unix(row.event_created_at) or 0,
            livemode=row.livemode,
            data=EventData(object=row.event_object),
        )
        .model_dump_json()
        .encode()
    )
    headers = {
        **signing.headers(_secrets(deps, row, now), row.event_id, int(now.timestamp()), body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }
    started = time.perf_counter()
    status_code, retry_after, response_body, error = await _post(deps, row, body, headers)
    latency_ms = round((time.perf_counter() - started) * 1000)
    decision = decide(status_code, retry_after, attempt, deps.settings.retry_delays(), now)
    await _record(deps, row, attempt, now, status_code, latency_ms, response_body, error, decision)


async def _post(
    deps: Deps, row: DeliveryContext, body: bytes, headers: dict[str, str]
) -> tuple[int | None, str | None, str | None, str | None]:
    """POST the event; (status code, Retry-After, first 1 KB of the body, error)."""
    allowed = deps.settings.allowed_webhook_hosts()
    try:
        _check_literal(row.url, livemode=row.livemode, allowed_hosts=allowed)
        timeout = aiohttp.ClientTimeout(total=deps.settings.webhook_timeout_seconds)
        async with _session(deps.resolver, allowed).post(
            row.url, data=body, headers=headers, timeout=timeout, allow_redirects=False
        ) as response:
            prefix = await response.content.read(RESPONSE_PREFIX_BYTES)
            text = prefix.decode("utf-8", errors="replace")[:RESPONSE_PREFIX_BYTES]
            return response.status, response.headers.get("retry-after"), text, None
    except (UnsafeDestination, AddressNotAllowed) as refused:
        return None, None, None, f"url_not_allowed: {refused}"
    except TimeoutError:
        return None, None, None, "timeout"
    except aiohttp.ClientConnectorError as failure:
        if isinstance(failure.os_error, AddressNotAllowed):  # refused by the resolver
            return None, None, None, f"url_not_allowed: {failure.os_error}"
        return None, None, None, f"{type(failure).__name__}: {failure}"[:500]
    except aiohttp.ClientError as failure:
        return None, None, None, f"{type(failure).__name__}: {failure}"[:500]


def _check_literal(url: str, *, livemode: bool, allowed_hosts: frozenset[str]) -> None:
    """The delivery-time checks aiohttp's resolver cannot make: the URL's shape, and an IP
    literal host (aiohttp connects to a literal without asking the resolver). The host is
    taken as aiohttp's own URL parser reads it, so the two parsers cannot disagree."""
    check_shape(url, livemode=livemode)
    host = yarl.URL(url).raw_host or ""
    target = url_safety.normalise_host(host)
    if target is None:
        raise AddressNotAllowed(f"'{host}' is not a valid host name or IP address.")
    if not isinstance(target, str):  # a literal: judged here, without DNS
        listed = str(target) in {url_safety.host_key(h) for h in allowed_hosts}
        verdict = url_safety.classify_address(target)
        if verdict.reach is Reach.FORBIDDEN or (verdict.reach is Reach.INTERNAL and not listed):
            raise AddressNotAllowed(f"The host '{host}' is {verdict.reason}.")


async def _record(
    deps: Deps,
    row: DeliveryContext,
    attempt: int,
    attempted_at: datetime,
    status_code: int | None,
    latency_ms: int,
    response_body: str | None,
    error: str | None,
    decision: Decision,
) -> None:
    async with deps.pool.acquire() as conn, conn.transaction():
        await webhooks_db.record_attempt(
            conn,
            attempt_id=new_id("wha"),
            delivery_id=row.id,
            attempted_at=attempted_at,
            status_code=status_code,
            latency_ms=latency_ms,
            response_body=response_body,
            error=error,
            outcome=DeliveryStatus(decision.outcome.value),
            next_attempt_at=decision.next_attempt_at,
        )
        if decision.disable_endpoint:
            await webhooks_db.disable_endpoint(conn, row.endpoint_id, DisabledReason.GONE)
        if decision.outcome is Outcome.RETRY:
            await jobs_db.enqueue(
                conn,
                DELIVER,
                deliver_payload(row.id, row.endpoint_id, attempt + 1),
                queue=QUEUE,
                run_at=decision.next_attempt_at,
            )
    delivered = decision.outcome is Outcome.SUCCEEDED
    deps.metrics.webhook_attempt(
        decision.outcome.name.lower(),  # succeeded, retry, failed
        _age_seconds(deps, row) if delivered else None,
    )
    log.info(
        "webhook.attempt",
        delivery_id=row.id,
        attempt=attempt,
        status=status_code,
        outcome=decision.outcome.value,
        latency_ms=latency_ms,
    )


def _age_seconds(deps: Deps, row: DeliveryContext) -> float:
    """How long ago the event was written: from its id's time, as ``created`` is a test
    clock's time for objects on one."""
    written = milliseconds_of(row.event_id)
    if written is None:
        return (deps.clock.now() - row.event_created_at).total_seconds()
    return deps.clock.now().timestamp() - written / 1000


def _secrets(deps: Deps, row: DeliveryContext, now: datetime) -> list[str]:
    """The current secret, and the previous one while its overlap lasts."""
    endpoint_id = row.endpoint_id
    secrets = [deps.keys.decrypt(row.secret_ciphertext, context=endpoint_id)]
    previous, expires = row.previous_secret_ciphertext, row.previous_secret_expires_at
    if previous is not None and expires is not None and expires > now:
        secrets.append(deps.keys.decrypt(previous, context=endpoint_id))
    return secrets


def _session(resolver: HostResolver, allowed_hosts: frozenset[str]) -> aiohttp.ClientSession:
    """One connection-pooling session per event loop (and resolver, which is one outside
    tests). aiohttp rather than httpx here: under load httpx cost the worker over 1 ms of CPU
    per delivery (py-spy), aiohttp a tenth of that. Its resolver is the SSRF guard's, so the
    address checked is the address connected to. Redirects are not followed: a 3xx is an
    answer, and following it could lead past the SSRF guard."""
    loop = get_running_loop()
    sessions = _sessions.setdefault(loop, {})
    key = (resolver, allowed_hosts)
    session = sessions.get(key)
    if session is None or session.closed:
        connector = aiohttp.TCPConnector(
            limit=200, resolver=GuardedResolver(resolver, allowed_hosts)
        )
        session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        sessions[key] = session
    return session


async def close_sessions() -> None:
    """Close this loop's sessions (on worker shutdown)."""
    for session in _sessions.pop(get_running_loop(), {}).values():
        await session.close()
