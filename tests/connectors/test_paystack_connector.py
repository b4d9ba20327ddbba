"""The Paystack connector end to end against the stateful fake (tests/fakes/paystack)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from paygrid.connectors.base import (
    AccountConfig,
    AuthorizeRequest,
    InvalidCredentials,
    InvalidSignature,
    NoSuchCharge,
    OutcomeUnknown,
    ProviderUnreachable,
)
from paygrid.connectors.paystack import PaystackConnector, build
from paygrid.connectors.paystack.mapping import (
    EmailRequired,
    UnsupportedChannel,
    UnsupportedOperation,
)
from paygrid.domain.payments import AttemptOutcome
from tests.fakes.paystack import FakeMerchant, PaystackFake, closed_port_url

SUCCESS_CARD = "4084084084084081"
INSUFFICIENT_FUNDS_CARD = "5061020283705678"
RETURN_URL = "https://shop.example/return"


def config(base_url: str, secret_key: str, timeout: float = 5.0) -> AccountConfig:
    return AccountConfig(
        id="ca_test",
        provider="paystack",
        livemode=False,
        secret_key=secret_key,
        api_base=base_url,
        timeout_seconds=timeout,
    )


@pytest.fixture
async def connector(
    paystack_fake: PaystackFake, paystack_merchant: FakeMerchant
) -> AsyncIterator[PaystackConnector]:
    built = build(config(paystack_fake.base_url, paystack_merchant.secret_key))
    yield built
    await built.aclose()


@pytest.fixture
async def impatient(
    paystack_fake: PaystackFake, paystack_merchant: FakeMerchant
) -> AsyncIterator[PaystackConnector]:
    """The same account with a 0.5 s timeout, for the calls the fake makes hang (2 s): the
    other calls go through ``connector``, whose 5 s a stalled test machine cannot reach."""
    built = build(config(paystack_fake.base_url, paystack_merchant.secret_key, timeout=0.5))
    yield built
    await built.aclose()


def request(token: str | None = None, amount: int = 50_000, **fields: Any) -> AuthorizeRequest:
    base = AuthorizeRequest(
        idempotency_key=f"att_{uuid.uuid4().hex}",
        amount=amount,
        currency="NGN",
        capture=True,
        payment_method_token=token,
        return_url=RETURN_URL,
        payment_id="pay_123",
        email="ada@example.com",
        channels=("card",),
    )
    return replace(base, **fields)


async def pay(merchant: FakeMerchant, redirect_url: str | None, card: str = SUCCESS_CARD) -> None:
    assert redirect_url is not None
    await merchant.pay(redirect_url, card_number=card)


async def test_checkout_webhook_verify_then_charge_the_saved_card(
    connector: PaystackConnector, paystack_fake: PaystackFake, paystack_merchant: FakeMerchant
) -> None:
    sink = paystack_fake.sink_url()
    await paystack_merchant.set_webhook_url(sink)
    first = request()
    started = await connector.authorize(first)
    assert started.outcome is AttemptOutcome.REQUIRES_ACTION
    assert started.provider_reference == first.idempotency_key
    assert started.redirect_url is not None

    page = await paystack_merchant.pay(started.redirect_url, card_number=SUCCESS_CARD)
    back = urlsplit(page.headers["location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == RETURN_URL
    assert parse_qs(back.query)["reference"] == [first.idempotency_key]

    await paystack_merchant.wait_for_webhook("charge.success")
    [delivered] = await paystack_fake.sink_requests(sink)
    event = connector.parse_webhook(delivered["body"].encode(), delivered["headers"], now=0.0)
    assert event.type == "charge.success"
    assert event.event_id.startswith("charge.success:")
    assert event.attempt_id == first.idempotency_key
    assert event.attempt_result is not None
    assert event.attempt_result.outcome is AttemptOutcome.CAPTURED

    verified = await connector.retrieve(first.idempotency_key, started.provider_reference)
    assert verified.outcome is AttemptOutcome.CAPTURED
    assert verified.channel == "card"
    card = verified.saved_method
    assert card is not None
    assert (card.brand, card.last4, card.exp_month, card.exp_year) == ("visa", "4081", 12, 2030)
    assert card.country == "NG"
    assert card.token.startswith("AUTH_")
    assert event.attempt_result.saved_method == card

    again = await connector.authorize(request(token=card.token, amount=1_500))
    assert again.outcome is AttemptOutcome.CAPTURED
    assert again.saved_method == card
    await paystack_merchant.wait_for_webhook("charge.success", count=2)


async def test_insufficient_funds_card_is_declined(
    connector: PaystackConnector, paystack_merchant: FakeMerchant
) -> None:
    attempt = request()
    started = await connector.authorize(attempt)
    await pay(paystack_merchant, started.redirect_url, INSUFFICIENT_FUNDS_CARD)
    result = await connector.retrieve(attempt.idempotency_key, None)
    assert result.outcome is AttemptOutcome.DECLINED
    assert result.decline is not None
    assert result.decline.code == "insufficient_funds"
    assert result.decline.message == "Insufficient Funds"
    assert await paystack_merchant.webhooks() == []


async def test_saved_card_decline_keeps_paystacks_words(
    connector: PaystackConnector, paystack_merchant: FakeMerchant
) -> None:
    attempt = request()
    await pay(paystack_merchant, (await connector.authorize(attempt)).redirect_url)
    card = (await connector.retrieve(attempt.idempotency_key, None)).saved_method
    assert card is not None
    await paystack_merchant.decline_authorization(card.token, "Expired Card")
    result = await connector.authorize(request(token=card.token))
    assert result.outcome is AttemptOutcome.DECLINED
    assert result.decline is not None
    assert (result.decline.code, result.decline.message) == ("expired_card", "Expired Card")


async def test_unknown_authorization_code_is_a_decline(connector: PaystackConnector) -> None:
    result = await connector.authorize(request(token="AUTH_unknown"))
    assert result.outcome is AttemptOutcome.DECLINED
    assert result.decline is not None
    assert result.decline.message == "Invalid authorization code"


async def test_a_repeated_authorize_verifies_instead(
    connector: PaystackConnector, paystack_merchant: FakeMerchant
) -> None:
    attempt = request()
    started = await connector.authorize(attempt)
    repeated = await connector.authorize(attempt)
    assert repeated.outcome is AttemptOutcome.REQUIRES_ACTION
    assert repeated.provider_reference == attempt.idempotency_key
    await pay(paystack_merchant, started.redirect_url)
    assert (await connector.authorize(attempt)).outcome is AttemptOutcome.CAPTURED
    state = await paystack_merchant.state()
    assert list(state["transactions"]) == [attempt.idempotency_key]


async def test_partial_then_full_refund_pending_then_processed(
    connector: PaystackConnector, paystack_fake: PaystackFake, paystack_merchant: FakeMerchant
) -> None:
    attempt = request(amount=10_000)
    await pay(paystack_merchant, (await connector.authorize(attempt)).redirect_url)
    sink = paystack_fake.sink_url()
    await paystack_merchant.set_webhook_url(sink)

    partial = await connector.refund(attempt.idempotency_key, 4_000, "re_1")
    assert (partial.succeeded, partial.pending) == (False, True)
    assert partial.provider_reference is not None
    assert (await connector.retrieve_refund(partial.provider_reference)).pending

    await paystack_merchant.process_refunds()
    settled = await connector.retrieve_refund(partial.provider_reference)
    assert (settled.succeeded, settled.pending) == (True, False)

    await paystack_merchant.wait_for_webhook("refund.processed")
    bodies = [r for r in await paystack_fake.sink_requests(sink)]
    processed = next(r for r in bodies if json.loads(r["body"])["event"] == "refund.processed")
    assert isinstance(json.loads(processed["body"])["data"]["amount"], str)
    event = connector.parse_webhook(processed["body"].encode(), processed["headers"], now=0.0)
    assert event.refund_reference == partial.provider_reference
    assert event.refund_result is not None
    assert event.refund_result.succeeded
    assert event.provider_reference == attempt.idempotency_key

    too_much = await connector.refund(attempt.idempotency_key, 6_001, "re_2")
    assert (too_much.succeeded, too_much.pending, too_much.provider_reference) == (
        False,
        False,
        None,
    )
    assert too_much.failure_reason is not None

    rest = await connector.refund(attempt.idempotency_key, 6_000, "re_3")
    assert rest.pending
    await paystack_merchant.process_refunds("failed")
    assert rest.provider_reference is not None
    failed = await connector.retrieve_refund(rest.provider_reference)
    assert (failed.succeeded, failed.pending) == (False, False)


async def test_a_refund_names_paygrids_refund_and_the_merchants_key_in_its_note(
    connector: PaystackConnector, paystack_merchant: FakeMerchant
) -> None:
    """The note ``refund`` sends is what the refund list (the restore's re-sync) reads back
    as paygrid's refund id and the merchant's key; a dashboard refund names neither."""
    attempt = request(amount=10_000)
    await pay(paystack_merchant, (await connector.authorize(attempt)).redirect_url)
    key = 'order 42 key retry ~ "x"'
    made = await connector.refund(
        attempt.idempotency_key, 4_000, "re_01JNOTE", merchant_idempotency_key=key
    )
    keyless = await connector.refund(attempt.idempotency_key, 1_000, "re_01JKEYLESS")
    dashboard = await paystack_merchant.inject(
        "dashboard_refund", reference=attempt.idempotency_key, amount=500
    )
    fetched = await paystack_merchant.api("GET", f"/refund/{made.provider_reference}")
    assert fetched.json()["data"]["merchant_note"] == f"paygrid refund re_01JNOTE key {key}"

    listed = {r.reference: r for r in await connector.reconciliation_refunds(0)}
    assert set(listed) == {
        made.provider_reference,
        keyless.provider_reference,
        str(dashboard["id"]),
    }
    found = [
        (listed[str(reference)].refund_id, listed[str(reference)].idempotency_key)
        for reference in (made.provider_reference, keyless.provider_reference, dashboard["id"])
    ]
    assert found == [("re_01JNOTE", key), ("re_01JKEYLESS", None), (None, None)]


async def test_pending_refund_webhook_is_parsed(
    connector: PaystackConnector, paystack_merchant: FakeMerchant
) -> None:
    attempt = request(amount=10_000)
    await pay(paystack_merchant, (await connector.authorize(attempt)).redirect_url)
    created = await connector.refund(attempt.idempotency_key, 10_000, "re_1")
    [pending] = await paystack_merchant.wait_for_webhook("refund.pending")
    event = connector.parse_webhook(pending.body, pending.headers, now=0.0)
    assert event.refund_reference == created.provider_reference
    assert event.refund_result is not None
    assert event.refund_result.pending


async def test_bad_or_missing_signature_is_rejected(
    connector: PaystackConnector, paystack_merchant: FakeMerchant
) -> None:
    attempt = request()
    await pay(paystack_merchant, (await connector.authorize(attempt)).redirect_url)
    [delivery] = await paystack_merchant.wait_for_webhook("charge.success")
    tampered = delivery.body.replace(b'"success"', b'"failed"', 1)
    with pytest.raises(InvalidSignature):
        connector.parse_webhook(tampered, delivery.headers, now=0.0)
    with pytest.raises(InvalidSignature):
        connector.parse_webhook(delivery.body, {"content-type": "application/json"}, now=0.0)
    other = build(config("http://unused.invalid", "sk_test_someone_else"))
    try:
        with pytest.raises(InvalidSignature):
            other.parse_webhook(delivery.body, delivery.headers, now=0.0)
    finally:
        await other.aclose()
    upper = {"X-Paystack-Signature": delivery.signature.upper()}
    assert connector.parse_webhook(delivery.body, upper, now=0.0).type == "charge.success"


async def test_refused_connection_is_provider_unreachable(paystack_merchant: FakeMerchant) -> None:
    unreachable = build(config(closed_port_url(), paystack_merchant.secret_key))
    try:
        with pytest.raises(ProviderUnreachable):
            await unreachable.authorize(request())
        with pytest.raises(ProviderUnreachable):
            await unreachable.retrieve("att_x", None)
    finally:
        await unreachable.aclose()


async def test_timeout_after_processing_is_unknown_then_retrieve_resolves(
    connector: PaystackConnector, impatient: PaystackConnector, paystack_merchant: FakeMerchant
) -> None:
    attempt = request()
    await paystack_merchant.fail_next("timeout_after", path="/transaction/initialize")
    with pytest.raises(OutcomeUnknown):
        await impatient.authorize(attempt)
    found = await connector.retrieve(attempt.idempotency_key, None)
    assert found.outcome is AttemptOutcome.REQUIRES_ACTION
    assert found.provider_reference == attempt.idempotency_key

    paid = request()
    await pay(paystack_merchant, (await connector.authorize(paid)).redirect_url)
    card = (await connector.retrieve(paid.idempotency_key, None)).saved_method
    assert card is not None
    charge = request(token=card.token)
    await paystack_merchant.fail_next("timeout_after", path="/transaction/charge_authorization")
    with pytest.raises(OutcomeUnknown):
        await impatient.authorize(charge)
    resolved = await connector.retrieve(charge.idempotency_key, None)
    assert resolved.outcome is AttemptOutcome.CAPTURED


async def test_server_errors_and_unknown_references_are_unknown(
    connector: PaystackConnector, paystack_merchant: FakeMerchant
) -> None:
    await paystack_merchant.fail_next("error_500_after")
    attempt = request()
    with pytest.raises(OutcomeUnknown):
        await connector.authorize(attempt)
    assert (await connector.retrieve(attempt.idempotency_key, None)).outcome is (
        AttemptOutcome.REQUIRES_ACTION
    )
    await paystack_merchant.fail_next("error_503")
    with pytest.raises(OutcomeUnknown):
        await connector.refund("whatever", 100, "re_1")
    with pytest.raises(NoSuchCharge):  # verify answers 404: a definite "no such charge"
        await connector.retrieve("att_never_sent", None)
    with pytest.raises(OutcomeUnknown):
        await connector.retrieve_refund("999")


async def test_wrong_key_is_invalid_credentials(paystack_fake: PaystackFake) -> None:
    wrong = build(config(paystack_fake.base_url, "sk_test_not_a_merchant"))
    try:
        with pytest.raises(InvalidCredentials):
            await wrong.authorize(request())
    finally:
        await wrong.aclose()


async def test_requests_paystack_cannot_take_fail_before_any_call(
    connector: PaystackConnector, paystack_merchant: FakeMerchant
) -> None:
    with pytest.raises(EmailRequired):
        await connector.authorize(request(email=None))
    with pytest.raises(UnsupportedChannel):
        await connector.authorize(request(channels=("card", "crypto")))
    with pytest.raises(UnsupportedOperation):
        await connector.capture("ref", 100, "key")
    with pytest.raises(UnsupportedOperation):
        await connector.void("ref", "key")
    assert (await paystack_merchant.state())["transactions"] == {}


async def test_invalid_request_is_declined_without_a_charge(connector: PaystackConnector) -> None:
    result = await connector.authorize(request(currency="EUR"))
    assert result.outcome is AttemptOutcome.DECLINED
    assert result.decline is not None
    assert result.decline.message == "Currency not supported by merchant"


async def test_transaction_list_pages_through_for_reconciliation(
    connector: PaystackConnector, paystack_merchant: FakeMerchant
) -> None:
    paid, failed, open_ = request(amount=10_000), request(amount=20_000), request(amount=30_000)
    await pay(paystack_merchant, (await connector.authorize(paid)).redirect_url)
    await pay(
        paystack_merchant, (await connector.authorize(failed)).redirect_url, INSUFFICIENT_FUNDS_CARD
    )
    await connector.authorize(open_)

    seen: dict[str, tuple[str, int]] = {}
    page: int | None = 1
    while page is not None:
        rows, page = await connector.list_transactions(page=page, per_page=2)
        assert len(rows) <= 2
        seen.update({row.reference: (row.status, row.amount) for row in rows})
    assert seen[paid.idempotency_key] == ("success", 10_000)
    assert seen[failed.idempotency_key] == ("failed", 20_000)
    assert seen[open_.idempotency_key][1] == 30_000
    successes, _ = await connector.list_transactions(status="success")
    assert {row.reference for row in successes} == {paid.idempotency_key}
    assert all(row.currency == "NGN" and row.paid_at for row in successes)
