"""Reconciliation's matching of a provider refund that names a refund of paygrid's whose
provider answer was lost (pending, no provider id): it is that refund, reported for healing
by attaching the id, and never a dashboard refund to import a second time. Only the
merchant's refund of the very payment refunded matches (the reads hold only the account's
merchant's refunds: another merchant's is simply absent)."""

from __future__ import annotations

from paygrid.domain.reconciliation import (
    DiscrepancyType,
    PaygridRefund,
    ProviderRefund,
    RefundState,
    compare_refunds,
    named_refund,
)

WINDOW = (100, 200)
PAYMENTS = {"ref_a": "pay_a", "ref_b": "pay_b"}


def _theirs(
    reference: str, state: RefundState, refund_id: str | None, charge: str = "ref_a"
) -> ProviderRefund:
    return ProviderRefund(reference, charge, 300, "NGN", state, created=150, refund_id=refund_id)


def _lost(refund_id: str = "re_lost", payment: str = "pay_a", amount: int = 300) -> PaygridRefund:
    return PaygridRefund(refund_id, payment, None, amount, succeeded=False, pending=True)


def test_a_lost_answer_is_matched_to_its_refund_not_imported() -> None:
    lost = _lost()
    for state in RefundState:
        theirs = _theirs("77", state, "re_lost")
        (found,) = compare_refunds([lost], [theirs], PAYMENTS, WINDOW, awaiting={"re_lost": lost})
        assert (found.type, found.object_key, found.healable) == (
            DiscrepancyType.REFUND_MISMATCH,
            "refund:77",
            True,
        )
        assert (found.refund_id, found.payment_id, found.provider_reference) == (
            "re_lost",
            "pay_a",
            "77",
        )
        assert (found.paygrid_value, found.provider_value) == ("pending", state.value)
    # Without the named refund in hand it would be a dashboard refund, imported again.
    (imported,) = compare_refunds(
        [], [_theirs("77", RefundState.SUCCEEDED, "re_lost")], PAYMENTS, WINDOW
    )
    assert (imported.refund_id, imported.provider_value, imported.healable) == (None, "300", True)


def test_only_a_refund_of_the_same_payment_still_waiting_matches() -> None:
    theirs = _theirs("77", RefundState.SUCCEEDED, "re_lost")
    assert named_refund(theirs, "pay_a", {"re_lost": _lost()}) == _lost()
    # A note naming a refund of another payment (or forged): not that refund.
    assert named_refund(theirs, "pay_a", {"re_lost": _lost(payment="pay_b")}) is None
    # Another merchant's refund is never read: absent from ``awaiting``.
    assert named_refund(theirs, "pay_a", {}) is None
    # The charge is unknown here: nothing to match against.
    assert named_refund(theirs, None, {"re_lost": _lost()}) is None
    # Already answered (a reference, or no longer pending): the lost case does not apply.
    answered = PaygridRefund("re_lost", "pay_a", "55", 300, succeeded=False, pending=True)
    assert named_refund(theirs, "pay_a", {"re_lost": answered}) is None
    failed = PaygridRefund("re_lost", "pay_a", None, 300, succeeded=False, pending=False)
    assert named_refund(theirs, "pay_a", {"re_lost": failed}) is None
    # No refund id at all: a dashboard refund.
    assert named_refund(_theirs("78", RefundState.SUCCEEDED, None), "pay_a", {}) is None


def test_a_forged_note_on_another_payment_stays_a_dashboard_refund() -> None:
    """The provider refunded ``pay_b``'s charge with a note naming ``pay_a``'s lost refund:
    ``pay_a``'s refund is left alone; the refund is ``pay_b``'s, imported as one."""
    lost = _lost()
    theirs = _theirs("88", RefundState.SUCCEEDED, "re_lost", charge="ref_b")
    (found,) = compare_refunds([lost], [theirs], PAYMENTS, WINDOW, awaiting={"re_lost": lost})
    assert (found.refund_id, found.payment_id, found.healable) == (None, "pay_b", True)


def test_another_amount_is_for_a_person_and_known_or_late_ones_are_skipped() -> None:
    lost = _lost(amount=200)
    theirs = _theirs("77", RefundState.SUCCEEDED, "re_lost")
    (found,) = compare_refunds([lost], [theirs], PAYMENTS, WINDOW, awaiting={"re_lost": lost})
    assert (found.refund_id, found.healable) == ("re_lost", False)
    assert "300" in found.description and "200" in found.description
    # Attached already (a second run): the reference is known, nothing is found.
    again = compare_refunds([], [theirs], PAYMENTS, WINDOW, frozenset({"77"}), {"re_lost": _lost()})
    assert again == []
    late = ProviderRefund("79", "ref_a", 300, "NGN", RefundState.PENDING, 999, "re_lost")
    assert compare_refunds([], [late], PAYMENTS, WINDOW, awaiting={"re_lost": _lost()}) == []
