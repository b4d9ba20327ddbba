"""A real HTTP receiver for webhook tests: uvicorn serving a small Starlette app on a free
loopback port. It records every request and answers from a script."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str = ""
    received: list[Received] = field(default_factory=list)
    # Answers to give, in order; when used up, ``default`` is given.
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    default: tuple[int, dict[str, str]] = (200, {})
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    delay_seconds: float = 0.0  # how long each answer takes
    in_flight: dict[str, int] = field(default_factory=dict)
    overlaps: list[str] = field(default_factory=list)  # webhook-ids seen twice at once

    async def handle(self, request: Request) -> Response:
        message_id = request.headers.get("webhook-id", "")
        self.in_flight[message_id] = self.in_flight.get(message_id, 0) + 1
        if self.in_flight[message_id] > 1:
            self.overlaps.append(message_id)
        try:
            self.received.append(Received(dict(request.headers), await request.body()))
            self.arrived.set()
            if self.delay_seconds:
                await asyncio.sleep(self.delay_seconds)
            status, headers = self.script.pop(0) if self.script else self.default
            return Response(f"answer {status}", status_code=status, headers=headers)
        finally:
            self.in_flight[message_id] -= 1

    def event_ids(self) -> list[str]:
        return [r.headers["webhook-id"] for r in self.received]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()
    app = Starlette(routes=[Route("/hooks", state.handle, methods=["POST"])])
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    state.url = f"http://127.0.0.1:{port}/hooks"
    try:
        yield state
    finally:
        server.should_exit = True
        await task
