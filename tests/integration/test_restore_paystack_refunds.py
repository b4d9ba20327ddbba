"""The restore's re-sync with Paystack's refunds (issue 16 §5): Paystack keeps no metadata
on a refund, so paygrid writes its refund id and the merchant's Idempotency-Key into the
refund's ``merchant_note`` (``connectors/paystack/refund_notes.py``). A refund made through
paygrid after the backup comes back under its id, the merchant's retry with the same key
answers it and Paystack refunds nothing more; a refund made in Paystack's dashboard is
imported as before, under a new id."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from paygrid.clock import SYSTEM_CLOCK
from paygrid.config import Settings
from paygrid.connectors.paystack.refund_notes import refund_note
from paygrid.db import engine
from paygrid.restore_cli import deps_opener
from paygrid.services import status_sync
from paygrid.services.restore import restoring, resync
from paygrid.services.restore.restoring import RestoreOptions
from tests.conftest import Api, confirmed_payment
from tests.fakes.paystack import FakeMerchant, PaystackFake
from tests.integration.test_restore_drill import (
    _charge,
    _saved_method,
    _wait_until_open,
    drill_url,
    new_merchant,
    serving,
    take_backup,
)

__all__ = ["drill_url"]  # the fixture

pytestmark = pytest.mark.slow

# A key with the note's own words in it: the note is read with the key last.
REFUND_KEY_TEXT = 'refund 1 key "x" paygrid refund re_0 key ~'


async def _refunds_at_paystack(merchant: FakeMerchant) -> dict[str, Any]:
    listed = await merchant.api("GET", "/refund?perPage=100&page=1")
    assert listed.status_code == 200, listed.text
    return {str(r["id"]): r for r in listed.json()["data"]}


async def test_a_refund_made_after_the_backup_comes_back_under_its_id_and_key(
    drill_url: str,
    settings: Settings,
    tmp_path: Path,
    paystack_fake: PaystackFake,
    paystack_merchant: FakeMerchant,
) -> None:
    merchant = await new_merchant(drill_url, "Paystack refunds")
    async with serving(settings, drill_url) as http:
        api = Api(http, merchant.key("secret", livemode=False))
        customer, method = await _saved_method(api, http, paystack_fake, paystack_merchant)
        before = (await api.post("/v1/payments", _charge(customer, method, 1))).json()
        assert before["status"] == "succeeded", before
        backup = await take_backup(drill_url, tmp_path)

        # After the backup: a payment and its refund through paygrid, and a refund of the
        # older payment made in Paystack's dashboard.
        paying_key = f"pay-{uuid.uuid4().hex}"
        paid = await api.post(
            "/v1/payments", _charge(customer, method, 2), **{"Idempotency-Key": paying_key}
        )
        assert paid.status_code == 200 and paid.json()["status"] == "succeeded", paid.text
        refund_key = f"{REFUND_KEY_TEXT} {uuid.uuid4().hex}"
        refunding = {"payment": paid.json()["id"], "amount": 4_000}
        refund = await api.post("/v1/refunds", refunding, **{"Idempotency-Key": refund_key})
        assert refund.status_code == 200, refund.text
        refund_id = refund.json()["id"]
        await paystack_merchant.inject(
            "dashboard_refund",
            reference=before["attempts"][-1]["provider_reference"],
            amount=1_000,
        )
        await paystack_merchant.process_refunds()
        at_paystack = await _refunds_at_paystack(paystack_merchant)
        assert [r["merchant_note"] for r in at_paystack.values()].count(
            f"paygrid refund {refund_id} key {refund_key}"
        ) == 1

        report = await restoring.restore(
            drill_url,
            backup.path,
            deps_opener(drill_url, settings),
            SYSTEM_CLOCK,
            RestoreOptions(),  # the defaults: the fence waits for what is in flight
        )
        (found,) = report.accounts
        assert (found.provider, found.error) == ("paystack", None)
        assert (found.imported, found.refunds_imported) == (1, 2)

        await _wait_until_open(http)
        # Back under its own id, for its payment, settled as Paystack says.
        fetched = await api.get(f"/v1/refunds/{refund_id}")
        assert fetched.status_code == 200, fetched.text
        body = fetched.json()
        assert (body["id"], body["payment"], body["amount"], body["status"]) == (
            refund_id,
            paid.json()["id"],
            4_000,
            "succeeded",
        )
        # The merchant's retry answers the recorded refund; Paystack refunds nothing more.
        again = await api.post("/v1/refunds", refunding, **{"Idempotency-Key": refund_key})
        assert again.status_code == 200, again.text
        assert (again.json()["id"], again.json()["status"]) == (refund_id, "succeeded")
        assert await _refunds_at_paystack(paystack_merchant) == at_paystack
        restored = (await api.get(f"/v1/payments/{paid.json()['id']}")).json()
        assert restored["amount_refunded"] == 4_000
        # The dashboard refund names nothing of paygrid's: imported under a new id.
        older = (await api.get("/v1/refunds", payment=before["id"])).json()["data"]
        assert [(r["amount"], r["status"]) for r in older] == [(1_000, "succeeded")]
        assert older[0]["id"] != refund_id


async def test_a_refund_whose_answer_was_lost_before_the_backup_gets_paystacks_id_and_settles(
    drill_url: str,
    settings: Settings,
    tmp_path: Path,
    paystack_fake: PaystackFake,
    paystack_merchant: FakeMerchant,
) -> None:
    """Paystack made a refund whose answer paygrid lost (it stays ``pending`` in paygrid,
    without Paystack's id), just before the backup, and processed it: the re-sync lists it
    (its window starts a little before the backup) with a note naming a refund the restored
    database has. That refund takes Paystack's id and settles ``succeeded`` with its event;
    nothing is inserted a second time and the amount is counted once."""
    merchant = await new_merchant(drill_url, "Paystack lost")
    async with serving(settings, drill_url) as http:
        api = Api(http, merchant.key("secret", livemode=False))
        customer, method = await _saved_method(api, http, paystack_fake, paystack_merchant)
        paid = (await api.post("/v1/payments", _charge(customer, method, 3))).json()
        await paystack_merchant.fail_next("error_500_after", path="/refund")
        lost = await api.post("/v1/refunds", {"payment": paid["id"], "amount": 3_000})
        (refund_id,) = [r["id"] for r in (await api.get("/v1/refunds")).json()["data"]]
        assert await _refund_reference(drill_url, refund_id) == ("pending", None)
        await paystack_merchant.process_refunds()
        ((paystack_id, made),) = (await _refunds_at_paystack(paystack_merchant)).items()
        assert made["status"] == "processed", lost.text
        backup = await take_backup(drill_url, tmp_path)

        report = await restoring.restore(
            drill_url,
            backup.path,
            deps_opener(drill_url, settings),
            SYSTEM_CLOCK,
            RestoreOptions(),
        )
        (found,) = report.accounts
        assert (found.error, found.refunds_imported, found.refunds_reattached) == (None, 0, 1)
        await _wait_until_open(http)
        refunds = (await api.get("/v1/refunds", payment=paid["id"])).json()["data"]
        assert [(r["id"], r["amount"], r["status"]) for r in refunds] == [
            (refund_id, 3_000, "succeeded")
        ]
        assert await _refund_reference(drill_url, refund_id) == ("succeeded", paystack_id)
        after = (await api.get(f"/v1/payments/{paid['id']}")).json()
        assert after["amount_refunded"] == 3_000
        assert _refund_attempts(after) == [("refund", "succeeded", paystack_id)]
        assert await _events_of(api, refund_id) == ["refund.created", "refund.succeeded"]
        assert len(await _refunds_at_paystack(paystack_merchant)) == 1

        # A second re-sync over the same window finds it known and changes nothing.
        async with deps_opener(drill_url, settings)() as deps:
            (again,) = await resync.resync(deps, backup.manifest.created_at)
        assert (again.refunds_imported, again.refunds_reattached) == (0, 0)
        assert (await api.get(f"/v1/payments/{paid['id']}")).json()["amount_refunded"] == 3_000


@dataclass(frozen=True)
class PendingRefund:
    """A payment made after the backup and its refund, still pending at Paystack."""

    payment: dict[str, Any]
    refund_id: str
    paystack_id: str
    key: str
    params: dict[str, Any]


async def _restore_over_a_pending_refund(
    http: httpx.AsyncClient,
    api: Api,
    settings: Settings,
    drill_url: str,
    tmp_path: Path,
    paystack_fake: PaystackFake,
    paystack_merchant: FakeMerchant,
) -> PendingRefund:
    """Backup; then a payment and a refund Paystack keeps ``pending``; then the restore."""
    customer, method = await _saved_method(api, http, paystack_fake, paystack_merchant)
    backup = await take_backup(drill_url, tmp_path)
    paid = (await api.post("/v1/payments", _charge(customer, method, 4))).json()
    assert paid["status"] == "succeeded", paid
    key = f"pending-{uuid.uuid4().hex}"
    params = {"payment": paid["id"], "amount": 4_000}
    refund = await api.post("/v1/refunds", params, **{"Idempotency-Key": key})
    assert (refund.status_code, refund.json()["status"]) == (200, "pending"), refund.text
    ((paystack_id, made),) = (await _refunds_at_paystack(paystack_merchant)).items()
    assert made["status"] == "pending"

    report = await restoring.restore(
        drill_url, backup.path, deps_opener(drill_url, settings), SYSTEM_CLOCK, RestoreOptions()
    )
    (found,) = report.accounts
    assert (found.error, found.imported, found.refunds_imported) == (None, 1, 1)
    await _wait_until_open(http)
    return PendingRefund(paid, refund.json()["id"], paystack_id, key, params)


async def test_a_refund_still_pending_at_paystack_comes_back_pending_and_settles_later(
    drill_url: str,
    settings: Settings,
    tmp_path: Path,
    paystack_fake: PaystackFake,
    paystack_merchant: FakeMerchant,
) -> None:
    """Paystack keeps a refund pending for days. One made through paygrid after the backup
    comes back ``pending`` under its id, its amount held on the payment: the merchant's retry
    answers it (Paystack refunds nothing more), and Paystack's ``refund.processed`` webhook
    settles it with ``refund.succeeded``, as it settles a refund paygrid never lost."""
    merchant = await new_merchant(drill_url, "Paystack pending")
    async with serving(settings, drill_url) as http:
        api = Api(http, merchant.key("secret", livemode=False))
        pending = await _restore_over_a_pending_refund(
            http, api, settings, drill_url, tmp_path, paystack_fake, paystack_merchant
        )
        paid, refund_id = pending.payment, pending.refund_id

        fetched = (await api.get(f"/v1/refunds/{refund_id}")).json()
        assert (fetched["id"], fetched["payment"], fetched["amount"], fetched["status"]) == (
            refund_id,
            paid["id"],
            4_000,
            "pending",
        )
        again = await api.post("/v1/refunds", pending.params, **{"Idempotency-Key": pending.key})
        assert again.status_code == 200, again.text
        assert (again.json()["id"], again.json()["status"]) == (refund_id, "pending")
        # The pending amount is held: a new refund may take only what is left.
        left = paid["amount"] - 4_000
        too_much = {"payment": paid["id"], "amount": left + 1}
        refused = await api.post("/v1/refunds", too_much, **{"Idempotency-Key": uuid.uuid4().hex})
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "refund_exceeds_available"
        assert f"still refundable ({left})" in refused.json()["error"]["message"]
        assert list(await _refunds_at_paystack(paystack_merchant)) == [pending.paystack_id]
        held = (await api.get(f"/v1/payments/{paid['id']}")).json()
        assert _refund_attempts(held) == [("refund", "pending", pending.paystack_id)]

        assert await paystack_merchant.process_refunds() == [int(pending.paystack_id)]
        [delivery] = await paystack_merchant.wait_for_webhook("refund.processed")
        applied = await http.post(
            f"/v1/provider_webhooks/{paid['connector_account']}",
            content=delivery.body,
            headers=delivery.headers,
        )
        assert applied.json() == {"received": True, "status": "applied"}, applied.text
        assert (await api.get(f"/v1/refunds/{refund_id}")).json()["status"] == "succeeded"
        after = (await api.get(f"/v1/payments/{paid['id']}")).json()
        assert after["amount_refunded"] == 4_000
        assert _refund_attempts(after) == [("refund", "succeeded", pending.paystack_id)]
        assert await _events_of(api, refund_id) == ["refund.created", "refund.succeeded"]


async def test_a_restored_pending_refund_that_fails_at_paystack_is_settled_by_status_sync(
    drill_url: str,
    settings: Settings,
    tmp_path: Path,
    paystack_fake: PaystackFake,
    paystack_merchant: FakeMerchant,
) -> None:
    """No webhook this time: status sync asks Paystack about the restored pending refund,
    which failed there. It fails in paygrid with ``refund.failed`` and its held amount is
    released on the payment."""
    merchant = await new_merchant(drill_url, "Paystack pending fails")
    async with serving(settings, drill_url) as http:
        api = Api(http, merchant.key("secret", livemode=False))
        pending = await _restore_over_a_pending_refund(
            http, api, settings, drill_url, tmp_path, paystack_fake, paystack_merchant
        )
        held = (await api.get(f"/v1/payments/{pending.payment['id']}")).json()
        assert held["amount_refunded"] == 4_000

        await paystack_merchant.process_refunds("failed")
        async with deps_opener(drill_url, settings)() as deps:
            due = SYSTEM_CLOCK.now() + timedelta(seconds=settings.sync_delays()[0] + 1)
            report = await status_sync.run(deps, now=due)
        assert report.refunds_settled == 1
        failed = (await api.get(f"/v1/refunds/{pending.refund_id}")).json()
        assert failed["status"] == "failed"
        after = (await api.get(f"/v1/payments/{pending.payment['id']}")).json()
        assert after["amount_refunded"] == 0
        assert _refund_attempts(after) == [("refund", "failed", pending.paystack_id)]
        assert await _events_of(api, pending.refund_id) == ["refund.created", "refund.failed"]


async def _refund_reference(database_url: str, refund_id: str) -> tuple[str, str | None]:
    """The refund's status and the provider id paygrid keeps for it (not in the API)."""
    pool = await engine.create_pool(database_url, 1)
    try:
        row = await pool.fetchrow(
            "SELECT status, provider_reference FROM refunds WHERE id = $1", refund_id
        )
    finally:
        await pool.close()
    assert row is not None
    return row["status"], row["provider_reference"]


async def _events_of(api: Api, object_id: str) -> list[str]:
    events = (await api.get("/v1/events", limit=100)).json()["data"]
    return sorted(e["type"] for e in events if e["data"]["object"]["id"] == object_id)


def _refund_attempts(payment: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [
        (a["operation"], a["status"], a["provider_reference"])
        for a in payment["attempts"]
        if a["operation"] == "refund"
    ]


async def test_a_note_naming_another_merchants_refund_neither_blocks_nor_touches_it(
    drill_url: str,
    settings: Settings,
    tmp_path: Path,
    paystack_fake: PaystackFake,
    paystack_merchant: FakeMerchant,
) -> None:
    """A refund at Paystack whose note names a refund id another merchant has (written in
    Paystack's dashboard, or forged): the re-sync imports it as this merchant's own refund
    under a new id, the restore completes, and the other merchant's refund is unchanged."""
    merchant = await new_merchant(drill_url, "Paystack note")
    other = await new_merchant(drill_url, "Simulator other")
    async with serving(settings, drill_url) as http:
        api = Api(http, merchant.key("secret", livemode=False))
        their_api = Api(http, other.key("secret", livemode=False))
        their_payment = await their_api.post("/v1/payments", confirmed_payment(amount=5_000))
        assert their_payment.status_code == 200, their_payment.text
        theirs = await their_api.post(
            "/v1/refunds", {"payment": their_payment.json()["id"], "amount": 2_000}
        )
        assert theirs.status_code == 200 and theirs.json()["status"] == "succeeded", theirs.text
        customer, method = await _saved_method(api, http, paystack_fake, paystack_merchant)
        backup = await take_backup(drill_url, tmp_path)

        paid = (await api.post("/v1/payments", _charge(customer, method, 4))).json()
        assert paid["status"] == "succeeded", paid
        forged = await paystack_merchant.api(
            "POST",
            "/refund",
            {
                "transaction": paid["attempts"][-1]["provider_reference"],
                "amount": 1_000,
                "merchant_note": refund_note(theirs.json()["id"], "their key"),
            },
        )
        assert forged.status_code == 200, forged.text
        await paystack_merchant.process_refunds()

        report = await restoring.restore(
            drill_url, backup.path, deps_opener(drill_url, settings), SYSTEM_CLOCK
        )
        (found,) = report.accounts
        assert (found.error, found.imported, found.refunds_imported) == (None, 1, 1)

        await _wait_until_open(http)
        (mine,) = (await api.get("/v1/refunds", payment=paid["id"])).json()["data"]
        assert mine["id"] != theirs.json()["id"]
        assert (mine["amount"], mine["status"]) == (1_000, "succeeded")
        kept = (await their_api.get(f"/v1/refunds/{theirs.json()['id']}")).json()
        assert kept == theirs.json()
