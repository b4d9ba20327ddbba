"""Session fixtures that start the fake providers (registered from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# --- Stripe: localstripe in its own process --------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _wait_for_localstripe(url: str, process: object, deadline_seconds: float) -> None:
    import subprocess
    import time

    import httpx

    assert isinstance(process, subprocess.Popen)
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"localstripe exited with {process.returncode}")
        try:
            answer = httpx.get(f"{url}/v1/customers", auth=("sk_test_ready", ""), timeout=1)
        except httpx.TransportError:
            time.sleep(0.05)
            continue
        if answer.status_code == 200:
            return
    raise RuntimeError(f"localstripe did not answer at {url} within {deadline_seconds}s")


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    """A localstripe on a free local port for the whole session (its state is shared: tests
    create their own objects and never assume an empty store)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.localstripe_server", "--port", str(port)],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_localstripe(url, process, deadline_seconds=20)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- Paystack: the stateful fake of tests/fakes/paystack, in a background thread -------------


@pytest.fixture(scope="session")
async def paystack_fake() -> AsyncIterator[PaystackFake]:
    """The Paystack fake for the whole session: ``.base_url`` plus its control client.
    Tests stay independent by each using a merchant of their own (``paystack_merchant``)."""
    import httpx

    from tests.fakes.paystack import FakeServer, PaystackFake

    server = FakeServer()
    server.start()
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            yield PaystackFake(server.base_url, http)
    finally:
        server.stop()


@pytest.fixture
async def paystack_merchant(paystack_fake: PaystackFake) -> FakeMerchant:
    """A fresh merchant in the fake: its own secret key, transactions, refunds and webhooks."""
    return await paystack_fake.new_merchant()


import typing  # noqa: E402 - this section is appended whole; its imports stay inside it

if typing.TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.fakes.paystack import FakeMerchant, PaystackFake


# --- Stripe balance: payouts and balance transactions in front of localstripe ---------------


@pytest.fixture(scope="session")
async def stripe_fake(localstripe_url: str) -> AsyncIterator[StripeFake]:
    """The Stripe balance fake (tests/fakes/stripe_balance) for the whole session: point a
    Stripe account's ``api_base`` at ``.base_url``; ``.account(secret_key)`` drives payouts
    and discrepancies. Tests stay independent by each using a secret key of their own."""
    import httpx

    from tests.fakes.stripe_balance import FakeServer, StripeFake

    server = FakeServer(localstripe_url)
    server.start()
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            yield StripeFake(server.base_url, http)
    finally:
        server.stop()


if typing.TYPE_CHECKING:
    from tests.fakes.stripe_balance import StripeFake
