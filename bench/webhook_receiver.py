"""A minimal webhook receiver for ``bench/webhooks.py``, run as its own process.

It is a raw asyncio HTTP/1.1 server (``httptools`` parser, ``uvloop`` when installed) on
127.0.0.1 that answers every ``POST`` at once with ``200`` and a two-byte body, keeping the
connection alive, and records for each request the ``webhook-id`` header and the arrival time
(``time.time()``, taken when the whole request has been read). It does no other work while
deliveries arrive, so that it is not the bottleneck: the signatures of every request are
checked with the reference ``standardwebhooks`` library only after it is told to stop.

``GET /_stats`` answers ``{"received": n, "unique": m}`` so the benchmark can wait for the
deliveries it expects. On SIGTERM or SIGINT it stops listening, verifies the signatures, writes
``--out`` (JSON: every arrival, duplicates included, and the verification result) and exits.

Usage (the benchmark starts it)::

    BENCH_WEBHOOK_SECRET=whsec_... python bench/webhook_receiver.py --port 9000 --out arrivals.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httptools
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SECRET_VARIABLE = "BENCH_WEBHOOK_SECRET"  # noqa: S105 - the variable's name, not a secret
OK_RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok"
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
MAX_FAILURES_KEPT = 20


@dataclass(slots=True)
class Received:
    """Everything the receiver keeps: arrivals in order, and the raw requests to verify."""

    arrivals: list[tuple[str, float]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    connections: int = 0
    malformed: int = 0

    def stats(self) -> bytes:
        """The ``/_stats`` body."""
        return json.dumps(
            {
                "received": len(self.arrivals),
                "unique": len(self.seen),
                "connections": self.connections,
                "malformed": self.malformed,
            }
        ).encode()


class ReceiverProtocol(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, parsed by httptools."""

    def __init__(self, received: Received) -> None:
        self.received = received
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.received.connections += 1

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.received.malformed += 1
            if self.transport is not None:
                self.transport.write(BAD_REQUEST)
                self.transport.close()

    # httptools callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = {}
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        """A whole request is in: answer it, and record a delivery."""
        arrived = time.time()
        transport = self.transport
        if transport is None:
            return
        if self.parser.get_method() == b"GET" and self.url == b"/_stats":
            stats = self.received.stats()
            transport.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                + str(len(stats)).encode()
                + b"\r\n\r\n"
                + stats
            )
        else:
            message_id = self.headers.get("webhook-id", "")
            received = self.received
            received.arrivals.append((message_id, arrived))
            received.seen.add(message_id)
            received.requests.append((self.headers, b"".join(self.body)))
            transport.write(OK_RESPONSE)
        if not self.parser.should_keep_alive():
            transport.close()


def verify_all(received: Received, secret: str) -> dict[str, Any]:
    """Check every recorded request's signature and that its body is the event its
    ``webhook-id`` names."""
    webhook = Webhook(secret)
    verified = 0
    failures: list[str] = []
    for headers, body in received.requests:
        try:
            event = webhook.verify(body, headers)
            if not isinstance(event, dict) or event.get("id") != headers.get("webhook-id"):
                raise WebhookVerificationError("the body's id is not the webhook-id header")
            verified += 1
        except (WebhookVerificationError, ValueError) as failure:
            if len(failures) < MAX_FAILURES_KEPT:
                failures.append(f"{headers.get('webhook-id', '?')}: {failure}")
    return {
        "verified": verified,
        "failed": len(received.requests) - verified,
        "failure_examples": failures,
    }


async def serve(port: int, secret: str) -> dict[str, Any]:
    """Receive until SIGTERM or SIGINT; returns the arrivals and the verification."""
    received = Received()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: ReceiverProtocol(received), "127.0.0.1", port, backlog=1024
    )
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"receiver listening on 127.0.0.1:{port}", flush=True)
    await stop.wait()
    server.close()
    verification = verify_all(received, secret)
    result = {
        "arrivals": received.arrivals,
        "connections": received.connections,
        "malformed": received.malformed,
        "signatures": verification,
    }
    print(
        f"receiver: {len(received.arrivals)} requests, {verification['verified']} verified,"
        f" {verification['failed']} failed verification",
        flush=True,
    )
    return result


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, receive until stopped, write the arrivals file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True, help="where to write the arrivals")
    args = parser.parse_args(argv)
    secret = os.environ.get(SECRET_VARIABLE)
    if not secret:
        sys.exit(f"set {SECRET_VARIABLE} to the endpoint's signing secret")
    try:
        import uvloop
    except ImportError:  # the standard loop is fast enough for a few thousand requests/s
        result = asyncio.run(serve(args.port, secret))
    else:
        result = uvloop.run(serve(args.port, secret))
    args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
