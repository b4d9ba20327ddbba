"""The Paystack fake's decline-later cards (issue 14 §2): they pay at checkout with a
reusable authorization, and charging that authorization later fails as Paystack reports an
issuer's refusal, in the spec's shape; paygrid's mapping reads Stripe's decline code from it."""

from __future__ import annotations

import pytest

from paygrid.connectors.paystack import mapping
from paygrid.domain.payments import AttemptOutcome
from tests.connectors.test_paystack_fake import assert_conforms
from tests.fakes.paystack import FakeMerchant
from tests.fakes.paystack.state import DECLINE_LATER_CARDS


@pytest.mark.parametrize(
    ("number", "decline_code"),
    [
        ("4000000000000341", "generic_decline"),
        ("4000000000009979", "stolen_card"),
        ("4000000000009987", "lost_card"),
        ("4000000000009995", "insufficient_funds"),
        ("4000000000000069", "expired_card"),
    ],
)
async def test_a_decline_later_card_pays_then_its_authorization_fails(
    paystack_merchant: FakeMerchant, number: str, decline_code: str
) -> None:
    reference = f"ref-{number[-4:]}"
    init = await paystack_merchant.api(
        "POST",
        "/transaction/initialize",
        {"email": "ada@example.com", "amount": 50_000, "reference": reference},
    )
    paid = await paystack_merchant.pay(init.json()["data"]["authorization_url"], card_number=number)
    assert paid.status_code in (200, 302), paid.text  # 200 without a callback_url
    verified = await paystack_merchant.api("GET", f"/transaction/verify/{reference}")
    assert_conforms(verified, "/transaction/verify/{reference}", "get", "200")
    data = verified.json()["data"]
    assert data["status"] == "success"
    authorization = data["authorization"]
    assert (authorization["reusable"], authorization["last4"]) == (True, number[-4:])

    body = {
        "email": "ada@example.com",
        "amount": 1200,
        "authorization_code": authorization["authorization_code"],
        "reference": f"{reference}-again",
    }
    for attempt in range(2):  # every later charge fails the same way
        charged = await paystack_merchant.api(
            "POST",
            "/transaction/charge_authorization",
            {**body, "reference": f"{reference}-{attempt}"},
        )
        assert_conforms(charged, "/transaction/charge_authorization", "post", "200")
        transaction = charged.json()["data"]
        assert transaction["status"] == "failed"
        assert transaction["gateway_response"] == DECLINE_LATER_CARDS[number]
        result = mapping.transaction_result(transaction)
        assert result.outcome is AttemptOutcome.DECLINED
        assert result.decline is not None
        assert result.decline.decline_code == decline_code
