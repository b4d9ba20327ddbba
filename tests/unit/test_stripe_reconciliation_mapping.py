"""Stripe's side of reconciliation, pure: every PaymentIntent and refund status maps
(``assert_never`` keeps it exhaustive), a PaymentIntent becomes a provider charge with its
balance transaction's fee and paygrid's attempt id from its metadata, a refund is placed by
its PaymentIntent (or its charge's), and the matcher pairs an attempt that has no stored
reference with its PaymentIntent by that attempt id."""

from __future__ import annotations

from typing import Any

import pytest

from paygrid.connectors.base import ConnectorError
from paygrid.connectors.stripe import reconciliation as recon
from paygrid.connectors.stripe.mapping import IntentStatus, RefundStatus
from paygrid.domain.payments import AttemptStatus, PaymentStatus
from paygrid.domain.reconciliation import (
    ChargeState,
    DiscrepancyType,
    PaygridCharge,
    RefundState,
    compare_charges,
)


def intent(**fields: Any) -> dict[str, Any]:
    return {
        "id": "pi_1",
        "object": "payment_intent",
        "amount": 1_000,
        "amount_received": 1_000,
        "currency": "usd",
        "status": "succeeded",
        "created": 1_700_000_000,
        "metadata": {"paygrid_attempt_id": "pa_1"},
        "latest_charge": "ch_1",
        **fields,
    }


@pytest.mark.parametrize("status", list(IntentStatus))
def test_every_intent_status_has_a_charge_state(status: IntentStatus) -> None:
    assert isinstance(recon.charge_state(status), ChargeState)


def test_what_the_intent_statuses_mean() -> None:
    assert recon.charge_state(IntentStatus.REQUIRES_CAPTURE) is ChargeState.SUCCEEDED
    assert recon.charge_state(IntentStatus.REQUIRES_ACTION) is ChargeState.REQUIRES_ACTION
    assert recon.charge_state(IntentStatus.CANCELED) is ChargeState.FAILED
    assert recon.charge_state(IntentStatus.PROCESSING) is ChargeState.PROCESSING
    assert {s: recon.refund_state(s) for s in RefundStatus} == {
        RefundStatus.SUCCEEDED: RefundState.SUCCEEDED,
        RefundStatus.PENDING: RefundState.PENDING,
        RefundStatus.REQUIRES_ACTION: RefundState.PENDING,
        RefundStatus.FAILED: RefundState.FAILED,
        RefundStatus.CANCELED: RefundState.FAILED,
    }


def test_a_payment_intent_becomes_a_provider_charge() -> None:
    fees = recon.charge_fees(
        [
            {"type": "charge", "source": "ch_1", "fee": 59},
            {"type": "refund", "source": "re_1", "fee": 0},
            {"type": "charge", "source": {"id": "ch_2"}, "fee": 7},
        ]
    )
    assert fees == {"ch_1": 59, "ch_2": 7}
    charge = recon.charge(intent(), fees)
    assert (charge.reference, charge.state, charge.amount, charge.currency) == (
        "pi_1",
        ChargeState.SUCCEEDED,
        1_000,
        "USD",
    )
    assert (charge.fee, charge.attempt_id, charge.created) == (59, "pa_1", 1_700_000_000)
    held = recon.charge(intent(status="requires_capture", amount_received=0, metadata={}), {})
    assert (held.amount, held.fee, held.attempt_id) == (1_000, None, None)
    with pytest.raises(ConnectorError):
        recon.charge(intent(created="yesterday"), {})


def test_a_refund_is_placed_by_its_payment_intent() -> None:
    base = {"id": "re_1", "amount": 300, "currency": "usd", "created": 1, "status": "pending"}
    named = recon.refund({**base, "payment_intent": "pi_1", "charge": "ch_1"}, {})
    assert named is not None and (named.charge_reference, named.succeeded) == ("pi_1", False)
    by_charge = recon.refund({**base, "payment_intent": None, "charge": "ch_9"}, {"ch_9": "pi_9"})
    assert by_charge is not None and by_charge.charge_reference == "pi_9"
    assert recon.refund({**base, "payment_intent": None, "charge": "ch_0"}, {}) is None
    assert recon.intents_by_charge([intent()]) == {"ch_1": "pi_1"}


def test_an_attempt_without_a_reference_is_matched_by_the_metadata() -> None:
    ours = PaygridCharge(
        payment_id="pay_1",
        attempt_id="pa_1",
        reference="pa_1",  # the create timed out: no PaymentIntent id stored
        attempt_status=AttemptStatus.CAPTURED,
        payment_status=PaymentStatus.SUCCEEDED,
        amount=900,
        currency="USD",
        fee=None,
    )
    compared = compare_charges([ours], [recon.charge(intent(), {})])
    assert compared.unmatched_ours == [] and compared.unmatched_theirs == []
    assert [f.type for f in compared.findings] == [DiscrepancyType.AMOUNT_MISMATCH]
