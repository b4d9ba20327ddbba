"""Run the Stripe balance fake in a background thread (uvicorn on 127.0.0.1, a free port) in
front of localstripe, and drive its ``/_fake`` controls through a small typed client."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

import httpx
import uvicorn

from tests.fakes.stripe_balance.app import StripeBalanceFake


class FakeServer:
    """The fake's uvicorn server on its own thread and event loop."""

    def __init__(self, backend_url: str) -> None:
        self.fake = StripeBalanceFake(backend_url)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
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
        self._thread = threading.Thread(target=self._run, name="stripe-balance-fake", daemon=True)

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._socket]))

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the Stripe balance fake did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()


class StripeFake:
    """The running fake: ``base_url`` is a Stripe API base (localstripe behind it)."""

    def __init__(self, base_url: str, http: httpx.AsyncClient) -> None:
        self.base_url = base_url
        self._http = http

    def account(self, secret_key: str) -> StripeFakeAccount:
        return StripeFakeAccount(self, secret_key, self._http)


class StripeFakeAccount:
    """One secret key's balance in the fake, with its control endpoints."""

    def __init__(self, fake: StripeFake, secret_key: str, http: httpx.AsyncClient) -> None:
        self.fake = fake
        self.secret_key = secret_key
        self._http = http
        self._auth = {"Authorization": f"Bearer {secret_key}"}

    async def api(self, method: str, path: str, **params: Any) -> httpx.Response:
        """Call the fake's Stripe API as this account; returns the raw response."""
        return await self._http.request(method, path, params=params, headers=self._auth)

    async def _control(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self._http.post(path, json=body, headers=self._auth)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    async def pay_out(
        self,
        payment_intents: Sequence[str] = (),
        refunds: Sequence[str] = (),
        *,
        status: str = "paid",
        net_delta: int = 0,
    ) -> dict[str, Any]:
        """A payout of these PaymentIntents' charges and these refunds (plus any injected
        unknown charge or dashboard refund); returns the payout with its transaction ids."""
        body = {
            "payment_intents": list(payment_intents),
            "refunds": list(refunds),
            "status": status,
            "net_delta": net_delta,
        }
        return await self._control("/_fake/payouts", body)

    async def set_payout_status(self, payout_id: str, status: str) -> dict[str, Any]:
        """Move a payout on: ``in_transit``, ``paid``, ``failed``, ``canceled``."""
        return await self._control(f"/_fake/payouts/{payout_id}/status", {"status": status})

    async def hold(self, path: str) -> None:
        """Hold this key's next POST to ``path`` (e.g. ``/v1/payment_intents``) before it
        reaches localstripe, until ``release``: a slow provider call, in flight."""
        await self._control("/_fake/holds", {"path": path})

    async def hold_arrived(self, path: str) -> bool:
        """Whether the held request has arrived (waits up to 10 s for it)."""
        return bool((await self._control("/_fake/holds/arrived", {"path": path}))["arrived"])

    async def release(self, path: str) -> None:
        """Let the held request through to localstripe."""
        await self._control("/_fake/holds/release", {"path": path})

    async def inject(self, kind: str, **body: Any) -> dict[str, Any]:
        """Make Stripe disagree with paygrid: ``fee``, ``missing_charge``,
        ``unknown_charge``, ``amount``, ``status`` or ``dashboard_refund``."""
        return await self._control(f"/_fake/discrepancies/{kind}", body)
