"""Pure Paystack mapping and signature checks, on payloads shaped like Paystack's samples."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from paygrid.connectors.base import InvalidSignature, TokenizedCard
from paygrid.connectors.paystack import mapping, webhooks
from paygrid.domain.payments import AttemptOutcome

SECRET = "sk_test_unit"
AUTHORIZATION = {
    "authorization_code": "AUTH_8dfhjjdt",
    "bin": "408408",
    "last4": "4081",
    "exp_month": "12",
    "exp_year": "2030",
    "channel": "card",
    "card_type": "visa ",
    "bank": "TEST BANK",
    "country_code": "NG",
    "brand": "visa",
    "reusable": True,
    "signature": "SIG_abc",
}


def transaction(status: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": 4099260516,
        "status": status,
        "reference": "att_1",
        "amount": 40333,
        "gateway_response": "Approved",
        "channel": "card",
        "currency": "NGN",
        "authorization": AUTHORIZATION,
        **fields,
    }


def signed(payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    signature = hmac.new(SECRET.encode(), body, hashlib.sha512).hexdigest()
    return body, {"x-paystack-signature": signature}


def test_success_is_captured_with_the_reusable_card() -> None:
    result = mapping.transaction_result(transaction("success"))
    assert result.outcome is AttemptOutcome.CAPTURED
    assert result.provider_reference == "att_1"
    assert result.channel == "card"
    assert result.saved_method == TokenizedCard(
        "AUTH_8dfhjjdt", "visa", "4081", 12, 2030, country="NG"
    )


def test_a_card_that_cannot_be_reused_is_not_saved() -> None:
    single_use = transaction("success", authorization={**AUTHORIZATION, "reusable": False})
    assert mapping.transaction_result(single_use).saved_method is None
    transfer = {**AUTHORIZATION, "exp_month": None, "channel": "bank_transfer"}
    assert mapping.saved_method(transfer) is None
    assert mapping.saved_method({}) is None


@pytest.mark.parametrize(
    ("gateway_response", "code"),
    [
        ("Insufficient Funds", "insufficient_funds"),
        ("Expired Card", "expired_card"),
        ("Invalid CVV", "incorrect_cvc"),
        ("Incorrect PIN", "authentication_failed"),
        ("Issuer or Switch Inoperative", "card_declined"),  # issuer_not_available
        ("Request Timeout", "processing_error"),
        ("Declined", "card_declined"),
        ("Do Not Honor", "card_declined"),
    ],
)
def test_declines_map_gateway_responses_and_keep_the_text(gateway_response: str, code: str) -> None:
    result = mapping.transaction_result(transaction("failed", gateway_response=gateway_response))
    assert result.outcome is AttemptOutcome.DECLINED
    assert result.decline is not None
    assert (result.decline.code, result.decline.message) == (code, gateway_response)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("reversed", AttemptOutcome.DECLINED),
        ("abandoned", AttemptOutcome.REQUIRES_ACTION),
        ("ongoing", AttemptOutcome.REQUIRES_ACTION),
        ("send_otp", AttemptOutcome.REQUIRES_ACTION),
        ("send_pin", AttemptOutcome.REQUIRES_ACTION),
        ("open_url", AttemptOutcome.REQUIRES_ACTION),
        ("pay_offline", AttemptOutcome.REQUIRES_ACTION),
        ("pending", AttemptOutcome.UNKNOWN),
        ("processing", AttemptOutcome.UNKNOWN),
        ("queued", AttemptOutcome.UNKNOWN),
    ],
)
def test_every_transaction_status_maps(status: str, outcome: AttemptOutcome) -> None:
    assert mapping.transaction_result(transaction(status)).outcome is outcome


def test_an_unknown_status_fails_loudly() -> None:
    with pytest.raises(mapping.UnexpectedResponse):
        mapping.transaction_result(transaction("teleported"))
    with pytest.raises(mapping.UnexpectedResponse):
        mapping.refund_result({"id": 1, "status": "teleported"})


@pytest.mark.parametrize(
    ("status", "succeeded", "pending"),
    [
        ("pending", False, True),
        ("processing", False, True),
        ("needs-attention", False, True),
        ("processed", True, False),
        ("failed", False, False),
    ],
)
def test_refund_statuses(status: str, succeeded: bool, pending: bool) -> None:
    result = mapping.refund_result({"id": 3018284, "status": status, "amount": 10000})
    assert (result.succeeded, result.pending, result.provider_reference) == (
        succeeded,
        pending,
        "3018284",
    )


def test_initialize_result_and_duplicate_detection() -> None:
    created = {
        "status": True,
        "message": "Authorization URL created",
        "data": {
            "authorization_url": "https://checkout.paystack.com/0peioxfhpn",
            "access_code": "0peioxfhpn",
            "reference": "att_1",
        },
    }
    result = mapping.initialize_result(created)
    assert result.outcome is AttemptOutcome.REQUIRES_ACTION
    assert result.redirect_url == "https://checkout.paystack.com/0peioxfhpn"
    duplicate = {"status": False, "message": "Duplicate Transaction Reference"}
    assert mapping.is_duplicate_reference(duplicate)
    assert not mapping.is_duplicate_reference({"status": False, "message": "Invalid key"})
    with pytest.raises(mapping.UnexpectedResponse):
        mapping.initialize_result(duplicate)


def test_request_bodies() -> None:
    body = mapping.initialize_body(
        reference="att_1",
        email="a@b.co",
        amount=500,
        currency="GHS",
        channels=("mobile_money", "card"),
        callback_url="https://r",
        payment_id="pay_1",
    )
    assert body["channels"] == ["mobile_money", "card"]
    assert body["metadata"] == {"paygrid_payment_id": "pay_1", "paygrid_attempt_id": "att_1"}
    assert "channels" not in mapping.initialize_body(
        reference="a",
        email="e",
        amount=1,
        currency="NGN",
        channels=(),
        callback_url="",
        payment_id="",
    )
    with pytest.raises(mapping.UnsupportedChannel):
        mapping.payment_channels(("card", "cash"))
    charge = mapping.charge_authorization_body(
        reference="att_2", email="a@b.co", amount=1, currency="NGN", authorization_code="AUTH_x",
        payment_id="pay_1",
    )  # fmt: skip
    assert json.loads(charge["metadata"])["paygrid_attempt_id"] == "att_2"


def test_charge_success_event() -> None:
    event = mapping.event_from_payload({"event": "charge.success", "data": transaction("success")})
    assert event.event_id == "charge.success:4099260516"
    assert event.attempt_id == "att_1"
    assert event.attempt_result is not None
    assert event.attempt_result.outcome is AttemptOutcome.CAPTURED
    assert event.attempt_result.saved_method is not None


@pytest.mark.parametrize("amount", ["10000", 10000])
def test_refund_events_take_amount_as_string_or_int(amount: object) -> None:
    data = {
        "status": "processed",
        "transaction_reference": "att_1",
        "refund_reference": "132013318360",
        "amount": amount,
        "currency": "NGN",
        "id": 1234,
    }
    event = mapping.event_from_payload({"event": "refund.processed", "data": data})
    assert event.event_id == "refund.processed:1234"
    assert event.refund_reference == "1234"
    assert event.refund_result is not None
    assert event.refund_result.succeeded
    assert event.provider_reference == "att_1"
    assert mapping.amount(data) == 10000


def test_refund_event_without_an_id_names_only_the_transaction() -> None:
    data = {"status": "pending", "transaction_reference": "att_1", "amount": "500"}
    event = mapping.event_from_payload({"event": "refund.pending", "data": data})
    assert (event.refund_reference, event.refund_result) == (None, None)
    assert event.provider_reference == "att_1"
    with pytest.raises(mapping.UnexpectedResponse):
        mapping.event_from_payload({"event": "refund.pending", "data": {**data, "amount": "1.5"}})


def test_other_events_have_no_results() -> None:
    event = mapping.event_from_payload(
        {"event": "transfer.success", "data": {"id": 77, "reference": "tr_1"}}
    )
    assert (event.event_id, event.type) == ("transfer.success:77", "transfer.success")
    assert event.attempt_result is None
    assert event.refund_result is None


def test_signature_round_trip_and_rejections() -> None:
    body, headers = signed({"event": "charge.success", "data": transaction("success")})
    assert webhooks.verified_payload(body, headers, SECRET)["event"] == "charge.success"
    assert webhooks.sign(body, SECRET) == headers["x-paystack-signature"]
    with pytest.raises(InvalidSignature):
        webhooks.verify(body + b" ", headers, SECRET)
    with pytest.raises(InvalidSignature):
        webhooks.verify(body, headers, "sk_test_other")
    with pytest.raises(InvalidSignature):
        webhooks.verify(body, {}, SECRET)
    with pytest.raises(InvalidSignature):
        webhooks.verify(body, {"x-paystack-signature": ""}, SECRET)
    not_json, not_json_headers = (
        b"not json",
        {"x-paystack-signature": webhooks.sign(b"not json", SECRET)},
    )
    with pytest.raises(InvalidSignature):
        webhooks.verified_payload(not_json, not_json_headers, SECRET)
