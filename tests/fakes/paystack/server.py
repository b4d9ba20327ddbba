"""Run the fake in a background thread (uvicorn on 127.0.0.1, a free port) and talk to its
``/_fake`` controls through a small typed client."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import uvicorn

from tests.fakes.paystack.app import FakePaystack

FaultMode = Literal["timeout_after", "timeout_before", "error_500_after", "error_503"]


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    id: int
    event: str
    body: bytes  # the exact bytes that were signed
    signature: str
    url: str | None  # None: no webhook URL was set, so it was only recorded
    status_code: int | None
    error: str | None

    @property
    def attempted(self) -> bool:
        return self.status_code is not None or self.error is not None

    @property
    def headers(self) -> dict[str, str]:
        return {"content-type": "application/json", "x-paystack-signature": self.signature}


class FakeServer:
    """The fake's uvicorn server on its own thread and event loop."""

    def __init__(self) -> None:
        self.fake = FakePaystack()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        port = self._socket.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            self.fake.app(),
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            http="h11",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="paystack-fake", daemon=True)

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._socket]))

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the Paystack fake did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()


def closed_port_url() -> str:
    """A local URL nothing listens on: connecting to it is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class PaystackFake:
    """The running fake: its base URL and a way to open merchants (separate namespaces)."""

    def __init__(self, base_url: str, http: httpx.AsyncClient) -> None:
        self.base_url = base_url
        self._http = http

    async def new_merchant(self, *, auto_process_refunds: bool = False) -> FakeMerchant:
        response = await self._http.post(
            "/_fake/merchants", json={"auto_process_refunds": auto_process_refunds}
        )
        response.raise_for_status()
        return FakeMerchant(self, response.json()["secret_key"], self._http)

    def sink_url(self) -> str:
        """A fresh URL on the fake that records what is POSTed to it (a webhook receiver)."""
        return f"{self.base_url}/_fake/sink/{uuid.uuid4().hex}"

    async def sink_requests(self, sink_url: str) -> list[dict[str, Any]]:
        response = await self._http.get(sink_url)
        response.raise_for_status()
        requests: list[dict[str, Any]] = response.json()["requests"]
        return requests


class FakeMerchant:
    """One merchant (secret key) in the fake, with its control endpoints."""

    def __init__(self, fake: PaystackFake, secret_key: str, http: httpx.AsyncClient) -> None:
        self.fake = fake
        self.secret_key = secret_key
        self._http = http
        self._auth = {"Authorization": f"Bearer {secret_key}"}

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = await self._http.request(method, path, json=body, headers=self._auth)
        response.raise_for_status()
        return response.json()

    async def api(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        """Call the fake's Paystack API as this merchant; returns the raw response."""
        return await self._http.request(method, path, json=body, headers=self._auth)

    async def set_webhook_url(self, url: str | None) -> None:
        await self._call("PUT", "/_fake/webhook_url", {"url": url})

    async def process_refunds(self, status: str = "processed") -> list[int]:
        """Move every pending refund to ``status`` (processed, processing or failed)."""
        result = await self._call("POST", "/_fake/refunds/process", {"status": status})
        return list(result["refunds"])

    async def fail_next(
        self, mode: FaultMode, *, count: int = 1, path: str | None = None, hang_seconds: float = 2.0
    ) -> None:
        """Make the next ``count`` API requests (under ``path``) fail as ``mode`` says."""
        body = {"mode": mode, "count": count, "path": path, "hang_seconds": hang_seconds}
        await self._call("POST", "/_fake/faults", body)

    async def decline_authorization(self, code: str, gateway_response: str) -> None:
        await self._call(
            "POST", f"/_fake/authorizations/{code}/decline", {"gateway_response": gateway_response}
        )

    async def webhooks(self) -> list[WebhookDelivery]:
        result = await self._call("GET", "/_fake/webhooks")
        return [
            WebhookDelivery(
                d["id"],
                d["event"],
                d["body"].encode(),
                d["signature"],
                d["url"],
                d["status_code"],
                d["error"],
            )
            for d in result["webhooks"]
        ]

    async def wait_for_webhook(
        self, event: str, *, count: int = 1, within: float = 5.0
    ) -> list[WebhookDelivery]:
        """The deliveries of ``event`` once there are ``count`` of them (and they were sent, when
        a webhook URL is set)."""
        deadline = time.monotonic() + within
        while True:
            found = [d for d in await self.webhooks() if d.event == event]
            settled = all(d.url is None or d.attempted for d in found)
            if len(found) >= count and settled:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"{count} x {event} never arrived; saw {found}")
            await asyncio.sleep(0.02)

    async def resend_webhook(self, delivery_id: int) -> None:
        await self._call("POST", f"/_fake/webhooks/{delivery_id}/resend")

    async def state(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/_fake/state")
        return result

    async def settle(
        self,
        references: list[str] | None = None,
        *,
        status: str = "success",
        effective_amount_delta: int = 0,
    ) -> dict[str, Any]:
        """Settle successful transactions (default: every one not settled yet); returns the
        settlement as ``GET /settlement`` lists it (tests/fakes/paystack/settlements.py)."""
        body: dict[str, Any] = {"status": status, "effective_amount_delta": effective_amount_delta}
        if references is not None:
            body["references"] = references
        result: dict[str, Any] = await self._call("POST", "/_fake/settlements", body)
        return result

    async def inject(self, kind: str, **body: Any) -> dict[str, Any]:
        """Make the provider disagree with paygrid: ``fee``, ``missing_charge``,
        ``unknown_charge``, ``amount``, ``status`` or ``dashboard_refund``."""
        result: dict[str, Any] = await self._call("POST", f"/_fake/discrepancies/{kind}", body)
        return result

    async def pay(
        self,
        authorization_url: str,
        *,
        card_number: str | None = None,
        channel: str = "card",
        exp_month: str = "12",
        exp_year: str = "2030",
    ) -> httpx.Response:
        """Submit the hosted checkout page as a customer would (no redirect following)."""
        form = {"channel": channel, "exp_month": exp_month, "exp_year": exp_year}
        if card_number is not None:
            form["card_number"] = card_number
        return await self._http.post(authorization_url, data=form)
