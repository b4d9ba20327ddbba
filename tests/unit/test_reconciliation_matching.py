"""The pure side of reconciliation: the matcher's typed findings, what is healable, the
daily run's window in a merchant's time zone (DST included), and Paystack's statuses."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from paygrid.connectors.paystack.mapping import RefundStatus, TransactionStatus
from paygrid.connectors.paystack.reconciliation import charge_state, refund_state
from paygrid.domain.payments import AttemptStatus, PaymentStatus
from paygrid.domain.reconciliation import (
    ChargeState,
    DiscrepancyType,
    PaygridCharge,
    PaygridRefund,
    ProviderCharge,
    ProviderRefund,
    RefundState,
    compare_charges,
    compare_refunds,
)
from paygrid.domain.reconciliation_runs import daily_window


def ours(
    reference: str, status: AttemptStatus = AttemptStatus.CAPTURED, **kw: object
) -> PaygridCharge:
    values: dict[str, object] = {
        "payment_id": f"pay_{reference}",
        "attempt_id": f"pa_{reference}",
        "reference": reference,
        "attempt_status": status,
        "payment_status": PaymentStatus.SUCCEEDED,
        "amount": 1000,
        "currency": "NGN",
        "fee": 15,
    }
    return PaygridCharge(**{**values, **kw})  # type: ignore[arg-type]


def theirs(
    reference: str, state: ChargeState = ChargeState.SUCCEEDED, **kw: object
) -> ProviderCharge:
    values: dict[str, object] = {
        "reference": reference,
        "state": state,
        "amount": 1000,
        "currency": "NGN",
        "fee": 15,
        "created": 100,
    }
    return ProviderCharge(**{**values, **kw})  # type: ignore[arg-type]


def test_each_difference_is_one_typed_finding() -> None:
    result = compare_charges(
        [
            ours("same"),
            ours("amount"),
            ours("fee", fee=20),
            ours("currency"),
            ours("waiting", AttemptStatus.REQUIRES_ACTION),
            ours("gone"),
        ],
        [
            theirs("same"),
            theirs("amount", amount=1100),
            theirs("fee"),
            theirs("currency", currency="GHS"),
            theirs("waiting"),
            theirs("stranger"),
        ],
    )
    kinds = {(f.type, f.object_key) for f in result.findings}
    assert kinds == {
        (DiscrepancyType.AMOUNT_MISMATCH, "pay_amount"),
        (DiscrepancyType.FEE_MISMATCH, "pay_fee"),
        (DiscrepancyType.CURRENCY_MISMATCH, "pay_currency"),
        (DiscrepancyType.STATUS_MISMATCH, "pay_waiting"),
    }
    assert [f.healable for f in result.findings if f.type is DiscrepancyType.STATUS_MISMATCH] == [
        True
    ]
    assert [c.reference for c in result.unmatched_ours] == ["gone"]
    assert [c.reference for c in result.unmatched_theirs] == ["stranger"]
    assert result.compared == 12


@pytest.mark.parametrize(
    ("attempt", "state", "differs", "healable"),
    [
        (AttemptStatus.CAPTURED, ChargeState.REVERSED, False, False),  # a full refund
        (AttemptStatus.CAPTURED, ChargeState.FAILED, True, False),  # money: for a person
        (AttemptStatus.REQUIRES_ACTION, ChargeState.REQUIRES_ACTION, False, False),
        (AttemptStatus.UNKNOWN, ChargeState.FAILED, True, True),
        (AttemptStatus.DECLINED, ChargeState.FAILED, False, False),
        (AttemptStatus.DECLINED, ChargeState.SUCCEEDED, True, False),
    ],
)
def test_status_drift_heals_only_while_paygrid_waits(
    attempt: AttemptStatus, state: ChargeState, differs: bool, healable: bool
) -> None:
    findings = compare_charges([ours("r", attempt)], [theirs("r", state)]).findings
    status = [f for f in findings if f.type is DiscrepancyType.STATUS_MISMATCH]
    assert bool(status) is differs
    assert all(f.healable is healable for f in status)


def test_paystack_refund_states() -> None:
    """Paystack's refunds wait pending or processing for days: still pending, not failed."""
    assert {s: refund_state(s) for s in RefundStatus} == {
        RefundStatus.PENDING: RefundState.PENDING,
        RefundStatus.PROCESSING: RefundState.PENDING,
        RefundStatus.NEEDS_ATTENTION: RefundState.PENDING,
        RefundStatus.PROCESSED: RefundState.SUCCEEDED,
        RefundStatus.FAILED: RefundState.FAILED,
    }


def test_refunds_unknown_on_either_side() -> None:
    provider = [
        ProviderRefund("11", "ref_a", 300, "NGN", RefundState.SUCCEEDED, created=150),
        ProviderRefund("12", "ref_a", 100, "NGN", RefundState.SUCCEEDED, created=150),  # ours
        ProviderRefund("13", "ref_a", 100, "NGN", RefundState.PENDING, created=150),  # pending
        ProviderRefund("14", "ref_b", 100, "NGN", RefundState.SUCCEEDED, created=150),  # no payment
        ProviderRefund("15", "ref_a", 100, "NGN", RefundState.SUCCEEDED, created=999),  # later
    ]
    paygrid = [
        PaygridRefund("re_1", "pay_a", "12", 100, succeeded=True),
        PaygridRefund("re_2", "pay_a", "99", 50, succeeded=True),
    ]
    found = compare_refunds(paygrid, provider, {"ref_a": "pay_a"}, (100, 200))
    assert {(f.object_key, f.healable) for f in found} == {("refund:11", True), ("re_2", False)}
    known = compare_refunds(paygrid, provider, {"ref_a": "pay_a"}, (100, 200), frozenset({"11"}))
    assert [f.object_key for f in known] == ["re_2"]  # imported earlier, outside the window


def test_the_daily_run_is_at_six_local_time_across_dst() -> None:
    six = time(6, 0)
    lagos = daily_window(datetime(2026, 12, 7, 4, 0, tzinfo=UTC), "Africa/Lagos", six)
    assert lagos == (datetime(2026, 12, 6, 5, tzinfo=UTC), datetime(2026, 12, 7, 5, tzinfo=UTC))
    after = daily_window(datetime(2026, 12, 7, 5, 0, tzinfo=UTC), "Africa/Lagos", six)
    assert after[1] == datetime(2026, 12, 8, 5, tzinfo=UTC)  # due now: the next is tomorrow
    # London springs forward on 2026-03-29: that day's window is 23 hours long.
    start, end = daily_window(datetime(2026, 3, 29, 3, 0, tzinfo=UTC), "Europe/London", six)
    assert (start, end) == (
        datetime(2026, 3, 28, 6, tzinfo=UTC),
        datetime(2026, 3, 29, 5, tzinfo=UTC),
    )
    assert daily_window(datetime(2026, 1, 1, tzinfo=UTC), "Not/AZone", six)[1] == datetime(
        2026, 1, 1, 6, tzinfo=UTC
    )


def test_every_paystack_status_maps_to_a_charge_state() -> None:
    states = {charge_state(status) for status in TransactionStatus}
    assert charge_state(TransactionStatus.SUCCESS) is ChargeState.SUCCEEDED
    assert charge_state(TransactionStatus.ABANDONED) is ChargeState.REQUIRES_ACTION
    assert states == set(ChargeState)
