"""What ``paygrid restore`` reads back from a provider's charge list: paygrid's payment id,
attempt id and the merchant's Idempotency-Key from the metadata paygrid sent along, in
each provider's shape (Paystack: an object from initialize, a JSON string from
charge_authorization; Stripe: the PaymentIntent's metadata)."""

from __future__ import annotations

import json

from paygrid.connectors.paystack import mapping as paystack_mapping
from paygrid.connectors.paystack.resync import charge_record as paystack_record
from paygrid.connectors.stripe.resync import charge_record as stripe_record
from paygrid.domain.reconciliation import ChargeState

METADATA = paystack_mapping.paygrid_metadata("pay_1", "att_1", "order-42")


def test_paygrid_metadata_names_the_payment_the_attempt_and_the_merchants_key() -> None:
    assert METADATA == {
        "paygrid_payment_id": "pay_1",
        "paygrid_attempt_id": "att_1",
        "paygrid_idempotency_key": "order-42",
    }
    assert "paygrid_idempotency_key" not in paystack_mapping.paygrid_metadata("p", "a", None)


def _paystack_item(metadata: object, status: str = "success") -> dict[str, object]:
    return {
        "reference": "att_1",
        "status": status,
        "amount": 10_000,
        "currency": "ngn",
        "createdAt": "2026-12-07T10:00:00.000Z",
        "metadata": metadata,
        "customer": {"email": "ada@example.com"},
    }


def test_a_paystack_transaction_gives_back_paygrids_ids_whatever_its_metadata_shape() -> None:
    for metadata in (METADATA, json.dumps(METADATA)):
        record = paystack_record(_paystack_item(metadata))
        assert (record.payment_id, record.attempt_id, record.idempotency_key) == (
            "pay_1",
            "att_1",
            "order-42",
        )
        assert (record.state, record.amount, record.currency) == (
            ChargeState.SUCCEEDED,
            10_000,
            "NGN",
        )
        assert (record.email, record.created) == ("ada@example.com", 1_796_637_600)


def test_a_paystack_transaction_paygrid_did_not_make_names_no_payment() -> None:
    record = paystack_record(_paystack_item("not json", status="abandoned"))
    assert (record.payment_id, record.attempt_id, record.idempotency_key) == (None, None, None)
    assert record.state is ChargeState.REQUIRES_ACTION


def test_a_stripe_payment_intent_gives_back_paygrids_ids_and_its_capture_method() -> None:
    record = stripe_record(
        {
            "id": "pi_1",
            "status": "requires_capture",
            "amount": 2_500,
            "currency": "usd",
            "created": 1_796_637_600,
            "capture_method": "manual",
            "receipt_email": None,
            "metadata": METADATA,
        }
    )
    assert (record.reference, record.payment_id, record.attempt_id, record.idempotency_key) == (
        "pi_1",
        "pay_1",
        "att_1",
        "order-42",
    )
    assert (record.state, record.amount, record.currency, record.capture_manual) == (
        ChargeState.SUCCEEDED,
        2_500,
        "USD",
        True,
    )
    assert record.email is None
