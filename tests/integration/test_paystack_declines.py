"""Off-session charges of a Paystack authorization that the issuer refuses (issue 14 §2):
with the fake's decline-later cards, the authorization saved at checkout is later charged
with ``charge_authorization`` and fails; the payment's ``last_payment_error`` carries
Stripe's ``decline_code`` for Paystack's words, as dunning reads it."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Api
from tests.fakes.paystack import FakeMerchant, PaystackFake
from tests.integration.test_saved_methods_paystack import _pay_on_hosted_page, _paystack_customer


@pytest.mark.parametrize(
    ("number", "code", "decline_code", "message"),
    [
        ("4000000000009979", "card_declined", "stolen_card", "Stolen Card, Pick-Up"),
        ("4000000000009987", "card_declined", "lost_card", "Lost Card, Pick-Up"),
        ("4000000000009995", "insufficient_funds", "insufficient_funds", "Insufficient Funds"),
        ("4000000000000341", "card_declined", "generic_decline", "Declined"),
    ],
)
async def test_a_saved_paystack_card_declined_later_reports_stripes_decline_code(
    api: Api,
    client: httpx.AsyncClient,
    paystack_fake: PaystackFake,
    paystack_merchant: FakeMerchant,
    number: str,
    code: str,
    decline_code: str,
    message: str,
) -> None:
    customer = await _paystack_customer(api, paystack_fake, paystack_merchant)
    first = await _pay_on_hosted_page(api, client, paystack_merchant, customer, card_number=number)
    method = first["payment_method"]
    charged = await api.post(
        "/v1/payments",
        {
            "amount": 250_000,
            "currency": "NGN",
            "confirm": True,
            "off_session": True,
            "customer": customer,
            "payment_method": method,
        },
    )
    assert charged.status_code == 402, charged.text
    error = charged.json()["error"]
    assert (error["code"], error["decline_code"], error["message"]) == (code, decline_code, message)
    payment = (await api.get(f"/v1/payments/{error['payment_id']}")).json()
    assert payment["status"] == "requires_payment_method"
    assert payment["last_payment_error"]["decline_code"] == decline_code
    assert payment["attempts"][-1]["decline_code"] == decline_code
