"""The restore drill on a small data set (issue 16 §5): take a backup, make 50 payments
through the Paystack fake, restore the backup behind the write fence, and check that

- the API answers for the objects from before the backup are the same JSON;
- the audit chain verifies;
- the 50 payments made after the backup are re-imported from Paystack, and retrying their
  Idempotency-Keys answers the same payments and charges nothing new at Paystack;
- a payment created before the backup and confirmed after it gets its attempt back: it is
  ``succeeded`` again, and retrying the confirm charges nothing;
- the fence was seen: a write during the restore got 503 ``maintenance_restoring`` with
  Retry-After, and ``/readyz`` said ``restoring``.

The app runs with its own pools and LISTEN hub (as ``paygrid serve`` does) on a database
of its own: the restore replaces every table of it."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from paygrid.app import create_app
from paygrid.clock import SYSTEM_CLOCK
from paygrid.config import Settings
from paygrid.db import engine
from paygrid.restore_cli import deps_opener
from paygrid.services import audit as audit_service
from paygrid.services.backups.create import CreatedBackup, create_backup
from paygrid.services.merchants import NewMerchant, create_merchant
from paygrid.services.restore import restoring
from paygrid.services.restore.restoring import RestoreOptions
from tests.conftest import TEST_BASE_URL, Api, scratch_database
from tests.fakes.paystack import FakeMerchant, PaystackFake

pytestmark = pytest.mark.slow

PAYING_CARD = "4084084084084081"
AFTER_BACKUP = 50


@pytest.fixture
def drill_url(server_url: str) -> Iterator[str]:
    with scratch_database(server_url, "paygrid_drill") as url:
        engine.upgrade(url)
        yield url


@contextlib.asynccontextmanager
async def serving(settings: Settings, url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app as ``paygrid serve`` runs it: its own pools, LISTEN hub and fence watch."""
    app = create_app(settings.model_copy(update={"worker_in_process": False}), database_url=url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL) as http:
            yield http


async def _saved_method(
    api: Api, http: httpx.AsyncClient, fake: PaystackFake, merchant: FakeMerchant
) -> tuple[str, str]:
    account = await api.post(
        "/v1/connector_accounts",
        {
            "provider": "paystack",
            "credentials": {"secret_key": merchant.secret_key},
            "currencies": ["NGN"],
            "api_base": fake.base_url,
        },
    )
    assert account.status_code == 200, account.text
    customer = (await api.post("/v1/customers", {"email": "ada@example.com"})).json()["id"]
    started = await api.post(
        "/v1/payments",
        {
            "amount": 500_000,
            "currency": "NGN",
            "confirm": True,
            "customer": customer,
            "setup_future_usage": "off_session",
            "payment_method_types": ["card"],
            "return_url": "https://shop.test/done",
        },
    )
    assert started.status_code == 200, started.text
    paid = await merchant.pay(
        started.json()["next_action"]["redirect_to_url"]["url"], card_number=PAYING_CARD
    )
    await http.get(paid.headers["location"])  # back at paygrid's return route
    done = (await api.get(f"/v1/payments/{started.json()['id']}")).json()
    assert done["status"] == "succeeded", done
    return customer, str(done["payment_method"])


def _charge(customer: str, method: str, n: int) -> dict[str, Any]:
    return {
        "amount": 10_000 + n,
        "currency": "NGN",
        "confirm": True,
        "off_session": True,
        "customer": customer,
        "payment_method": method,
    }


async def _charges_at_paystack(merchant: FakeMerchant) -> int:
    listed = await merchant.api("GET", "/transaction?perPage=1")
    return int(listed.json()["meta"]["total"])


async def take_backup(url: str, directory: Path) -> CreatedBackup:
    """A backup of the drill's database into ``directory``."""
    pool = await engine.create_pool(url, 2)
    try:
        return await create_backup(pool, url, directory)
    finally:
        await pool.close()


async def new_merchant(url: str, name: str) -> NewMerchant:
    """A merchant of its own in the drill's database (``name`` plus a random suffix)."""
    pool = await engine.create_pool(url, 2)
    try:
        return await create_merchant(pool, f"{name} {uuid.uuid4().hex[:6]}")
    finally:
        await pool.close()


async def _snapshot(api: Api, paths: list[str]) -> dict[str, Any]:
    return {path: (await api.get(path)).json() for path in paths}


async def test_a_restore_drill_reimports_what_was_charged_after_the_backup(
    drill_url: str,
    settings: Settings,
    tmp_path: Path,
    paystack_fake: PaystackFake,
    paystack_merchant: FakeMerchant,
) -> None:
    merchant = await new_merchant(drill_url, "Drill")
    async with serving(settings, drill_url) as http:
        api = Api(http, merchant.key("secret", livemode=False))
        customer, method = await _saved_method(api, http, paystack_fake, paystack_merchant)
        before = [
            (await api.post("/v1/payments", _charge(customer, method, n))).json()["id"]
            for n in range(3)
        ]
        paths = [
            *(f"/v1/payments/{p}" for p in before),
            f"/v1/customers/{customer}",
            f"/v1/payment_methods/{method}",
            "/v1/payments?limit=100",
            "/v1/events?limit=100",
        ]
        expected = await _snapshot(api, paths)
        unconfirmed = await api.post(
            "/v1/payments",
            {**_charge(customer, method, 7), "confirm": False, "off_session": False},
        )
        assert unconfirmed.status_code == 200, unconfirmed.text
        late = unconfirmed.json()["id"]
        backup = await take_backup(drill_url, tmp_path)

        confirm_key = f"drill-confirm-{uuid.uuid4().hex}"
        confirmed = await api.post(
            f"/v1/payments/{late}/confirm", {}, **{"Idempotency-Key": confirm_key}
        )
        assert confirmed.json()["status"] == "succeeded", confirmed.text
        keys = [f"drill-{uuid.uuid4().hex}" for _ in range(AFTER_BACKUP)]
        after: dict[str, dict[str, Any]] = {}
        for n, key in enumerate(keys):
            made = await api.post(
                "/v1/payments", _charge(customer, method, n), **{"Idempotency-Key": key}
            )
            assert made.status_code == 200, made.text
            after[key] = made.json()

        restore = asyncio.create_task(
            restoring.restore(
                drill_url,
                backup.path,
                deps_opener(drill_url, settings),
                SYSTEM_CLOCK,
                RestoreOptions(drain_timeout_seconds=30, retry_after=7),
            )
        )
        fenced = ready = None
        while not restore.done() and (fenced is None or ready is None):
            key = f"fenced-{uuid.uuid4().hex}"
            attempt = await api.post(
                "/v1/payments", _charge(customer, method, 99), **{"Idempotency-Key": key}
            )
            if attempt.status_code == 200:  # before the fence was up: re-imported as well
                after[key] = attempt.json()
            if attempt.status_code == 503 and fenced is None:
                fenced = attempt
            probe = await http.get("/readyz")
            if probe.status_code == 503 and probe.json()["status"] == "restoring":
                ready = probe
            await asyncio.sleep(0.02)
        report = await restore
        charged = await _charges_at_paystack(paystack_merchant)
        assert fenced is not None and ready is not None
        assert fenced.headers["Retry-After"] == "7"
        error = fenced.json()["error"]
        assert (error["type"], error["code"]) == ("api_error", "maintenance_restoring")
        assert set(report.timings) == {"fence", "empty", "restore", "migrate", "resync", "reopen"}
        (found,) = report.accounts
        assert len(after) >= AFTER_BACKUP
        assert (found.imported, found.reattached, found.error) == (len(after), 1, None)

        await _wait_until_open(http)
        assert await _snapshot(api, paths[:-2]) == {p: expected[p] for p in paths[:-2]}
        for key, answered in after.items():
            again = await api.post(
                "/v1/payments",
                _charge(customer, method, keys.index(key) if key in keys else 99),
                **{"Idempotency-Key": key},
            )
            assert again.status_code == 200, again.text
            body = again.json()
            assert (body["id"], body["status"], body["amount"]) == (
                answered["id"],
                "succeeded",
                answered["amount"],
            )
            assert (
                body["attempts"][-1]["provider_reference"]
                == answered["attempts"][-1]["provider_reference"]
            )
        # Confirmed after the backup: its attempt is back, and a retried confirm (its key
        # unknown to the restored database) finds the payment paid, charging nothing.
        restored = (await api.get(f"/v1/payments/{late}")).json()
        assert restored["status"] == "succeeded", restored
        assert (
            restored["attempts"][-1]["provider_reference"]
            == confirmed.json()["attempts"][-1]["provider_reference"]
        )
        retried = await api.post(
            f"/v1/payments/{late}/confirm", {}, **{"Idempotency-Key": confirm_key}
        )
        assert retried.status_code in (200, 400, 409), retried.text
        assert retried.status_code != 200 or retried.json()["status"] == "succeeded"
        assert await _charges_at_paystack(paystack_merchant) == charged

    pool = await engine.create_pool(drill_url, 2)
    try:
        (chain,) = await audit_service.verify(pool, merchant.id)
        assert chain.broken is None
    finally:
        await pool.close()


async def _wait_until_open(http: httpx.AsyncClient) -> None:
    for _ in range(100):
        if (await http.get("/readyz")).status_code == 200:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the fence was never lowered")
