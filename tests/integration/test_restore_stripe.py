"""The restore's re-sync with Stripe (issue 16 §5): payments charged at Stripe after the
backup (localstripe behind the Stripe fake of tests/fakes/stripe_balance, whose
PaymentIntent list filters by ``created`` and shows each secret key only its own objects)
are re-imported from their PaymentIntents' metadata under their ids and Idempotency-Keys;
retrying those keys answers the same payments and creates no PaymentIntent; a refund made
after the backup comes back under its id and key, and its retry refunds nothing more."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from paygrid.clock import SYSTEM_CLOCK
from paygrid.config import Settings
from paygrid.restore_cli import deps_opener
from paygrid.services.billing.subscriptions.schedule import STEP
from paygrid.services.restore import restoring
from paygrid.services.restore.restoring import RestoreOptions
from tests.conftest import SUCCESS_CARD, Api, card
from tests.fakes.stripe_balance import StripeFake
from tests.fakes.stripe_balance.server import StripeFakeAccount
from tests.integration.test_restore_drill import (
    _wait_until_open,
    drill_url,
    new_merchant,
    serving,
    take_backup,
)
from tests.integration.test_saved_methods_stripe import _saving
from tests.integration.test_settlements_stripe import _pay, _stripe_account
from tests.integration.test_subscriptions import T0, invoices_of, monthly_price, move, ok, subscribe
from tests.integration.test_test_clocks import billing_worker, create_clock

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


async def _refunds(stripe: StripeFakeAccount) -> int:
    listed = await stripe.api("GET", "/v1/refunds", limit=100)
    assert listed.status_code == 200, listed.text
    return len(listed.json()["data"])


async def test_a_restore_reimports_what_stripe_charged_after_the_backup(
    drill_url: str, settings: Settings, tmp_path: Path, stripe_fake: StripeFake
) -> None:
    merchant = await new_merchant(drill_url, "Stripe drill")
    async with serving(settings, drill_url) as http:
        api = Api(http, merchant.key("secret", livemode=False))
        _account, stripe = await _stripe_account(api, stripe_fake)
        before, _ = await _pay(api, 10_000)
        backup = await take_backup(drill_url, tmp_path)
        after: dict[str, dict[str, Any]] = {}
        for n in range(AFTER_BACKUP):
            key = f"stripe-drill-{uuid.uuid4().hex}"
            made = await api.post("/v1/payments", _purchase(20_000 + n), **{"Idempotency-Key": key})
            assert made.status_code == 200 and made.json()["status"] == "succeeded", made.text
            after[key] = made.json()
        refund_key = f"stripe-drill-refund-{uuid.uuid4().hex}"
        refunding = {"payment": before, "amount": 4_000}
        refund = await api.post("/v1/refunds", refunding, **{"Idempotency-Key": refund_key})
        assert refund.status_code == 200 and refund.json()["status"] == "succeeded", refund.text
        intents = await _payment_intents(stripe)
        refunds = await _refunds(stripe)

        report = await restoring.restore(
            drill_url,
            backup.path,
            deps_opener(drill_url, settings),
            SYSTEM_CLOCK,
            RestoreOptions(drain_timeout_seconds=30),
        )
        (found,) = report.accounts
        assert (found.provider, found.error) == ("stripe", None)
        assert (found.imported, found.already_known) == (AFTER_BACKUP, 1)
        assert found.refunds_imported == 1

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
        # The refund made after the backup is back under its id and the merchant's key (from
        # its Stripe metadata): the retry answers it, and Stripe refunds nothing more.
        again = await api.post("/v1/refunds", refunding, **{"Idempotency-Key": refund_key})
        assert again.status_code == 200, again.text
        assert (again.json()["id"], again.json()["status"]) == (refund.json()["id"], "succeeded")
        assert (await api.get(f"/v1/payments/{before}")).json()["amount_refunded"] == 4_000
        assert await _refunds(stripe) == refunds


async def test_a_renewal_charged_after_the_backup_is_not_charged_again_after_the_restore(
    drill_url: str, settings: Settings, tmp_path: Path, stripe_fake: StripeFake
) -> None:
    """A subscription renews (and is charged at Stripe) after the backup; the restored
    database renews that period again: the invoice comes back under its old id (derived
    from the subscription and period), its charge's key is the one the re-sync re-imported
    the payment under, and Stripe sees no new PaymentIntent."""
    merchant = await new_merchant(drill_url, "Stripe renewals")
    open_deps = deps_opener(drill_url, settings)
    async with serving(settings, drill_url) as http:
        api = Api(http, merchant.key("secret", livemode=False))
        _account, stripe = await _stripe_account(api, stripe_fake)
        clock = await create_clock(api, T0)
        email = f"renewal-{uuid.uuid4().hex[:12]}@example.com"
        customer = ok(await api.post("/v1/customers", {"email": email, "test_clock": clock["id"]}))
        saving = ok(await api.post("/v1/payments", _saving(customer["id"], SUCCESS_CARD)))
        default = {"invoice_settings": {"default_payment_method": saving["payment_method"]}}
        ok(await api.post(f"/v1/customers/{customer['id']}", default))
        assert (await subscribe(api, customer["id"], await monthly_price(api, 2900)))[
            "status"
        ] == "active"
        backup = await take_backup(drill_url, tmp_path)

        async with open_deps() as deps, billing_worker(deps, STEP):
            await move(api, clock["id"], T0 + timedelta(days=32))
        renewal = (await invoices_of(api, customer["id"]))[-1]
        assert (renewal["billing_reason"], renewal["status"]) == ("subscription_cycle", "paid")
        intents = await _payment_intents(stripe)

        report = await restoring.restore(
            drill_url,
            backup.path,
            open_deps,
            SYSTEM_CLOCK,
            RestoreOptions(drain_timeout_seconds=30),
        )
        (found,) = report.accounts
        assert (found.imported, found.error) == (1, None)
        await _wait_until_open(http)
        # The restored clock stands where the backup left it: the period renews again.
        assert len(await invoices_of(api, customer["id"])) == 1
        async with open_deps() as deps, billing_worker(deps, STEP):
            await move(api, clock["id"], T0 + timedelta(days=32))
        invoices = await invoices_of(api, customer["id"])
        assert [(i["billing_reason"], i["status"]) for i in invoices] == [
            ("subscription_create", "paid"),
            ("subscription_cycle", "paid"),
        ]
        assert (invoices[-1]["id"], invoices[-1]["payment"]) == (renewal["id"], renewal["payment"])
        assert await _payment_intents(stripe) == intents
