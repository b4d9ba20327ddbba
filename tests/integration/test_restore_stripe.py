"""The restore's re-sync with Stripe (issue 16 §5): payments charged at Stripe after the
backup (localstripe behind the Stripe fake of tests/fakes/stripe_balance, whose
PaymentIntent list filters by ``created`` and shows each secret key only its own objects)
are re-imported from their PaymentIntents' metadata under their ids and Idempotency-Keys;
retrying those keys answers the same payments and creates no PaymentIntent."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from paygrid.clock import SYSTEM_CLOCK
from paygrid.config import Settings
from paygrid.db import engine
from paygrid.restore_cli import deps_opener
from paygrid.services.backups.create import create_backup
from paygrid.services.merchants import create_merchant
from paygrid.services.restore import restoring
from paygrid.services.restore.restoring import RestoreOptions
from tests.conftest import SUCCESS_CARD, Api, card
from tests.fakes.stripe_balance import StripeFake
from tests.fakes.stripe_balance.server import StripeFakeAccount
from tests.integration.test_restore_drill import _wait_until_open, drill_url, serving
from tests.integration.test_settlements_stripe import _pay, _stripe_account

__all__ = ["drill_url"]  # the fixture, shared with the Paystack drill

pytestmark = pytest.mark.slow

AFTER_BACKUP = 3


def _purchase(amount: int) -> dict[str, Any]:
    return {
        "amount": amount,
        "currency": "usd",
        "confirm": True,
        "payment_method_data": card(SUCCESS_CARD),
    }


async def _payment_intents(stripe: StripeFakeAccount) -> int:
    listed = await stripe.api("GET", "/v1/payment_intents", limit=100)
    assert listed.status_code == 200, listed.text
    return len(listed.json()["data"])


async def test_a_restore_reimports_what_stripe_charged_after_the_backup(
    drill_url: str, settings: Settings, tmp_path: Path, stripe_fake: StripeFake
) -> None:
    pool = await engine.create_pool(drill_url, 2)
    try:
        merchant = await create_merchant(pool, f"Stripe drill {uuid.uuid4().hex[:6]}")
    finally:
        await pool.close()
    async with serving(settings, drill_url) as http:
        api = Api(http, merchant.key("secret", livemode=False))
        _account, stripe = await _stripe_account(api, stripe_fake)
        before, _ = await _pay(api, 10_000)
        pool = await engine.create_pool(drill_url, 2)
        try:
            backup = await create_backup(pool, drill_url, tmp_path)
        finally:
            await pool.close()
        after: dict[str, dict[str, Any]] = {}
        for n in range(AFTER_BACKUP):
            key = f"stripe-drill-{uuid.uuid4().hex}"
            made = await api.post("/v1/payments", _purchase(20_000 + n), **{"Idempotency-Key": key})
            assert made.status_code == 200 and made.json()["status"] == "succeeded", made.text
            after[key] = made.json()
        intents = await _payment_intents(stripe)

        report = await restoring.restore(
            drill_url,
            backup.path,
            deps_opener(drill_url, settings),
            SYSTEM_CLOCK,
            RestoreOptions(settle_seconds=0.2),
        )
        (found,) = report.accounts
        assert (found.provider, found.error) == ("stripe", None)
        assert (found.imported, found.already_known) == (AFTER_BACKUP, 1)

        await _wait_until_open(http)
        assert (await api.get(f"/v1/payments/{before}")).json()["status"] == "succeeded"
        for n, (key, answered) in enumerate(after.items()):
            again = await api.post(
                "/v1/payments", _purchase(20_000 + n), **{"Idempotency-Key": key}
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
        assert await _payment_intents(stripe) == intents
