"""A real server process is SIGKILLed after the provider charged but before paygrid recorded
the outcome. After a restart, retrying with the same Idempotency-Key finishes the same
payment, and the customer was charged exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
import httpx
import pytest

from paygrid.services.merchants import NewMerchant
from tests.conftest import SUCCESS_CARD, auth, card

pytestmark = pytest.mark.slow
PURCHASE = {
    "amount": 4100,
    "currency": "USD",
    "confirm": True,
    "payment_method_data": card(SUCCESS_CARD),
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _server(database_url: str, **env: str) -> Iterator[str]:
    port = _free_port()
    environment = {
        **os.environ,
        "PAYGRID_DATABASE_URL": database_url,
        "PAYGRID_PORT": str(port),
        "PAYGRID_LOG_LEVEL": "WARNING",
        **env,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "paygrid.cli", "serve"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise AssertionError("server did not become ready")
        yield base
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)


async def _charges(pool: asyncpg.Pool, merchant_id: str) -> int:
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM simulator.charges c JOIN payment_attempts a ON a.id = c.idempotency_key"
            " JOIN payments p ON p.id = a.payment_id WHERE p.merchant_id = $1",
            merchant_id,
        )
    )


async def test_sigkill_mid_payment_then_retry_charges_once(
    database_url: str, pool: asyncpg.Pool, merchant: NewMerchant
) -> None:
    headers = auth(merchant.key("secret", False), **{"Idempotency-Key": "crash-order-7"})
    # The simulator charges, then takes 30 s to answer: the window in which we kill the server.
    with _server(
        database_url, PAYGRID_SIMULATOR_LATENCY_MS="30000", PAYGRID_IDEMPOTENCY_LOCK_SECONDS="1"
    ) as base:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            pending = asyncio.create_task(http.post("/v1/payments", json=PURCHASE, headers=headers))
            for _ in range(200):
                if await _charges(pool, merchant.id) == 1:
                    break
                await asyncio.sleep(0.05)
            assert await _charges(pool, merchant.id) == 1
        # leaving the block SIGKILLs the server mid-request
        with pytest.raises(httpx.TransportError):
            await pending
    row = await pool.fetchrow("SELECT id, status FROM payments WHERE merchant_id = $1", merchant.id)
    assert row is not None
    assert row["status"] == "processing"

    with _server(database_url, PAYGRID_IDEMPOTENCY_LOCK_SECONDS="1") as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            await asyncio.sleep(1.2)  # the dead request's lock expires
            retried = await http.post("/v1/payments", json=PURCHASE, headers=headers)
            assert retried.status_code == 200, retried.text
            assert retried.json()["id"] == row["id"]
            assert retried.json()["status"] == "succeeded"
            replay = await http.post("/v1/payments", json=PURCHASE, headers=headers)
            assert replay.headers["idempotent-replayed"] == "true"
    assert await _charges(pool, merchant.id) == 1
    assert (
        await pool.fetchval("SELECT count(*) FROM payments WHERE merchant_id = $1", merchant.id)
        == 1
    )
