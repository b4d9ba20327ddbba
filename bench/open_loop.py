"""An open-loop load generator for ``bench/payments.py --rate``: payments at fixed times.

Request ``i`` is scheduled at ``start + i / rate`` whatever happened to the ones before it,
and its latency runs from that scheduled time (not from when it was actually sent) to its
answer, as wrk2 measures: a server that stalls makes every request scheduled during the
stall count the wait, instead of the generator quietly sending fewer (coordinated omission).
If the generator itself falls behind, the lag is reported and counted in the latencies.

The client is a minimal HTTP/1.1 keep-alive client on raw asyncio streams (uvloop), opening
a connection whenever none is idle: httpx costs several milliseconds of CPU per request
once hundreds of requests are in flight, on the same two cores as the server it measures.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import uvloop
from demo_server import PAYMENT_BODY

TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class OpenLoopResult:
    """What one open-loop run measured (latencies in milliseconds)."""

    offered_rate: float
    duration_s: float
    sent: int
    ok: int
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    max_send_lag_ms: float
    error_kinds: dict[str, int]
    # For each whole second of the run, how many of its requests took longer than p99:
    # stalls that recur every few seconds point at periodic work (a job, a checkpoint).
    slow_by_second: dict[int, int]

    @property
    def ok_rate(self) -> float:
        return self.ok / self.duration_s if self.duration_s else 0.0


Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]
# uvicorn closes a keep-alive connection idle for 5 s; one idle this long is not reused.
IDLE_SECONDS = 4.0


class Client:
    """Keep-alive connections to one server; ``pay`` takes an idle one or opens one."""

    def __init__(self, base_url: str, secret_key: str) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.body = json.dumps(PAYMENT_BODY).encode()
        self.head = (
            f"POST /v1/payments HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Authorization: Bearer {secret_key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(self.body)}\r\n"
        ).encode()
        self.idle: list[tuple[Stream, float]] = []  # and when each went idle

    async def _connection(self) -> Stream:
        while self.idle:
            stream, since = self.idle.pop()
            if time.perf_counter() - since < IDLE_SECONDS and not stream[0].at_eof():
                return stream
            stream[1].close()
        return await asyncio.open_connection(self.host, self.port)

    async def pay(self) -> str:
        """One payment: "ok" when it answered 200 with status succeeded, else what it was."""
        stream = await self._connection()
        reader, writer = stream
        key = f"Idempotency-Key: rate-{uuid.uuid4().hex}\r\n\r\n".encode()
        writer.write(self.head + key + self.body)
        head = (await reader.readuntil(b"\r\n\r\n")).lower()
        length = int(head.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
        body = await reader.readexactly(length)
        if b"connection: close" in head:
            writer.close()
        else:
            self.idle.append((stream, time.perf_counter()))
        if not head.startswith(b"http/1.1 200"):
            return head[:12].decode(errors="replace")
        return "ok" if b'"status":"succeeded"' in body else "200 without status succeeded"

    def close(self) -> None:
        for (_, writer), _ in self.idle:
            writer.close()


async def _pay(client: Client, scheduled: float, latencies: list[tuple[float, float]]) -> str:
    try:
        outcome = await asyncio.wait_for(client.pay(), TIMEOUT_SECONDS)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError,
            IndexError, TimeoutError) as error:  # fmt: skip
        outcome = type(error).__name__  # the connection is dropped, not returned to the pool
    latencies.append((scheduled, (time.perf_counter() - scheduled) * 1000))
    return outcome


def run(base_url: str, secret_key: str, rate: float, seconds: float) -> OpenLoopResult:
    """Send ``POST /v1/payments`` (confirm) ``rate`` times a second for ``seconds``."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_run(base_url, secret_key, rate, seconds))


async def _run(base_url: str, secret_key: str, rate: float, seconds: float) -> OpenLoopResult:
    total = int(rate * seconds)
    timed: list[tuple[float, float]] = []  # (scheduled send time, latency ms)
    lag = 0.0
    client = Client(base_url, secret_key)
    tasks: list[asyncio.Task[str]] = []
    start = time.perf_counter() + 0.05
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            lag = max(lag, -delay)
        request: Coroutine[Any, Any, str] = _pay(client, scheduled, timed)
        tasks.append(asyncio.create_task(request))
    outcomes = await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    client.close()
    latencies = [latency for _, latency in timed]
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    slow = Counter(int(at - start) for at, latency in timed if latency > cuts[98])
    ok = outcomes.count("ok")
    return OpenLoopResult(
        offered_rate=rate,
        duration_s=elapsed,
        sent=total,
        ok=ok,
        errors=total - ok,
        p50_ms=cuts[49],
        p95_ms=cuts[94],
        p99_ms=cuts[98],
        max_ms=max(latencies),
        max_send_lag_ms=lag * 1000,
        error_kinds=dict(Counter(outcome for outcome in outcomes if outcome != "ok")),
        slow_by_second=dict(sorted(slow.items())),
    )
