"""The pure translation of provider settlement data (Stripe's fixtures, Paystack's documented
answers) into paygrid's types, and the amounts rule every stored settlement obeys."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from paygrid.connectors.paystack import settlements as paystack
from paygrid.connectors.settlements import MalformedSettlement
from paygrid.connectors.stripe import settlements as stripe
from paygrid.domain.settlements import (
    SettlementStatus,
    SettlementTransactionType,
    Totals,
    inconsistency,
    settlement_totals,
)
from tests.connectors.test_stripe_balance_fake import fixture

# Paystack's documented List Settlements item, and a transaction of one.
PAYSTACK_SETTLEMENT: dict[str, Any] = {
    "id": 3090024,
    "domain": "live",
    "status": "success",
    "currency": "NGN",
    "integration": 463433,
    "total_amount": 39_385,
    "effective_amount": 39_385,
    "total_fees": 615,
    "total_processed": 41_000,
    "deductions": 1_000,
    "settlement_date": "2022-11-08T00:00:00.000Z",
    "settled_by": None,
    "createdAt": "2022-11-07T09:38:07.000Z",
    "updatedAt": "2022-11-08T09:02:06.000Z",
}
PAYSTACK_TRANSACTION: dict[str, Any] = {
    "id": 2250371218,
    "status": "success",
    "reference": "att_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0",
    "amount": 41_000,
    "fees": 615,
    "currency": "NGN",
    "paid_at": "2022-11-07T09:10:07.000Z",
    "createdAt": "2022-11-07T09:09:40.000Z",
}


def test_a_stripe_payout_maps_from_the_fixture() -> None:
    payout = fixture("payout")
    settlement = stripe.settlement(payout)
    assert settlement.provider_id == payout["id"]
    assert (settlement.status, settlement.currency) == (SettlementStatus.IN_TRANSIT, "USD")
    assert settlement.net == payout["amount"]
    assert settlement.arrival_date == datetime.fromtimestamp(payout["arrival_date"], UTC)
    assert settlement.totals is None, "a payout's gross and fee are its transactions' sums"


@pytest.mark.parametrize(
    ("status", "ours"),
    [
        ("paid", SettlementStatus.PAID),
        ("pending", SettlementStatus.PENDING),
        ("in_transit", SettlementStatus.IN_TRANSIT),
        ("canceled", SettlementStatus.CANCELED),
        ("failed", SettlementStatus.FAILED),
    ],
)
def test_every_stripe_payout_status_maps(status: str, ours: SettlementStatus) -> None:
    assert stripe.settlement({**fixture("payout"), "status": status}).status is ours


def test_a_stripe_balance_transaction_maps_from_the_fixture() -> None:
    bt = fixture("balance_transaction")
    line = stripe.settlement_transaction(bt)
    assert (line.provider_id, line.type, line.currency) == (
        bt["id"],
        SettlementTransactionType.CHARGE,
        "USD",
    )
    assert (line.gross, line.fee, line.net) == (bt["amount"], bt["fee"], bt["net"])
    assert line.source_id == bt["source"]
    assert line.payment_reference is None, "an unexpanded charge does not name its intent"
    expanded = {**bt, "source": {"id": bt["source"], "payment_intent": "pi_123"}}
    assert stripe.settlement_transaction(expanded).payment_reference == "pi_123"


def test_a_stripe_refund_links_by_its_id() -> None:
    refund = fixture("refund")
    bt = {**fixture("balance_transaction"), "type": "refund", "amount": -100, "net": -100}
    line = stripe.settlement_transaction({**bt, "source": refund})
    assert (line.type, line.refund_reference, line.payment_reference) == (
        SettlementTransactionType.REFUND,
        refund["id"],
        None,
    )
    assert (line.gross, line.net) == (-100, -100)


def test_stripe_types_paygrid_does_not_interpret_are_other_and_payouts_are_left_out() -> None:
    bt = fixture("balance_transaction")
    assert stripe.settlement_transaction({**bt, "type": "climate_order_purchase"}).type is (
        SettlementTransactionType.OTHER
    )
    assert stripe.settlement_transaction({**bt, "type": "stripe_fee"}).type is (
        SettlementTransactionType.FEE
    )
    assert stripe.is_payout_transfer({**bt, "type": "payout"})
    assert not stripe.is_payout_transfer(bt)


@pytest.mark.parametrize(
    "broken",
    [
        {"status": "exploded"},
        {"amount": "1100"},
        {"amount": True},
        {"id": None},
        {"arrival_date": None},
    ],
)
def test_a_malformed_stripe_payout_is_refused(broken: dict[str, Any]) -> None:
    with pytest.raises(MalformedSettlement):
        stripe.settlement({**fixture("payout"), **broken})


def test_a_paystack_settlement_maps_with_its_deductions() -> None:
    settlement = paystack.settlement(PAYSTACK_SETTLEMENT)
    assert (settlement.provider_id, settlement.status) == ("3090024", SettlementStatus.PAID)
    assert settlement.totals == Totals(gross=40_000, fee=615, net=39_385)
    assert settlement.net == 39_385
    assert settlement.created_at == datetime(2022, 11, 7, 9, 38, 7, tzinfo=UTC)
    no_deductions = paystack.settlement({**PAYSTACK_SETTLEMENT, "deductions": None})
    assert no_deductions.totals is not None and no_deductions.totals.gross == 41_000


@pytest.mark.parametrize(
    ("status", "ours"),
    [
        ("success", SettlementStatus.PAID),
        ("processing", SettlementStatus.IN_TRANSIT),
        ("pending", SettlementStatus.PENDING),
        ("failed", SettlementStatus.FAILED),
    ],
)
def test_every_paystack_settlement_status_maps(status: str, ours: SettlementStatus) -> None:
    assert paystack.settlement({**PAYSTACK_SETTLEMENT, "status": status}).status is ours


def test_a_paystack_settlement_transaction_links_by_reference() -> None:
    line = paystack.settlement_transaction(PAYSTACK_TRANSACTION)
    assert (line.type, line.payment_reference) == (
        SettlementTransactionType.CHARGE,
        PAYSTACK_TRANSACTION["reference"],
    )
    assert (line.gross, line.fee, line.net) == (41_000, 615, 40_385)
    with pytest.raises(MalformedSettlement):
        paystack.settlement_transaction({**PAYSTACK_TRANSACTION, "fees": None})
    with pytest.raises(MalformedSettlement):
        paystack.settlement({**PAYSTACK_SETTLEMENT, "status": "lost"})


def test_a_paystack_refund_a_settlement_deducted_is_a_negative_fee_free_line() -> None:
    refund = {
        "id": 1_234_567,
        "settlement": 3_090_024,
        "currency": "NGN",
        "amount": 1_000,
        "status": "processed",
        "refunded_at": "2022-11-07T10:00:00.000Z",
        "createdAt": "2022-11-07T09:50:00.000Z",
        "transaction_reference": PAYSTACK_TRANSACTION["reference"],
    }
    assert paystack.deducted_by(refund, "3090024")
    assert not paystack.deducted_by({**refund, "settlement": None}, "3090024")
    assert not paystack.deducted_by(refund, "3090025")
    line = paystack.refund_transaction(refund)
    assert (line.provider_id, line.type, line.refund_reference) == (
        "refund_1234567",
        SettlementTransactionType.REFUND,
        "1234567",
    )
    assert (line.gross, line.fee, line.net) == (-1_000, 0, -1_000)
    assert line.created_at == datetime(2022, 11, 7, 10, 0, tzinfo=UTC)
    settlement = paystack.settlement(PAYSTACK_SETTLEMENT)
    charge = paystack.settlement_transaction(PAYSTACK_TRANSACTION)
    assert inconsistency(settlement.totals, settlement.net, [charge, line]) is None


def test_the_amounts_rule() -> None:
    line = stripe.settlement_transaction(fixture("balance_transaction"))
    assert inconsistency(None, line.net, [line]) is None
    assert "paid out" in (inconsistency(None, line.net + 1, [line]) or "")
    broken = stripe.settlement_transaction({**fixture("balance_transaction"), "net": 99})
    assert "gross 100 - fee 0 != net 99" in (inconsistency(None, 99, [broken]) or "")
    assert inconsistency(Totals(100, 10, 90), 90, []) is None
    assert inconsistency(Totals(100, 10, 91), 91, []) is not None
    assert inconsistency(Totals(100, 10, 90), 91, []) is not None
    assert settlement_totals(None, [line, line]) == Totals(200, 0, 200)
    assert settlement_totals(Totals(5, 1, 4), [line]) == Totals(5, 1, 4)
