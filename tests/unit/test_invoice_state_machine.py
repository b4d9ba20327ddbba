"""The invoice transition table is Stripe's: draft → open by finalize; open → paid, void or
uncollectible; uncollectible → paid or void; paid and void are final. Numbers and totals
are exact."""

from __future__ import annotations

import pytest

from paygrid.domain.invoices import (
    FINAL,
    TRANSITIONS,
    InvoiceAction,
    InvoiceInvalidState,
    InvoiceStatus,
    apply,
    attempt_key,
    default_prefix,
    invoice_number,
    totals_of,
)

S = InvoiceStatus
ALLOWED = {
    (S.DRAFT, InvoiceAction.FINALIZE): S.OPEN,
    (S.OPEN, InvoiceAction.PAY): S.PAID,
    (S.OPEN, InvoiceAction.VOID): S.VOID,
    (S.OPEN, InvoiceAction.MARK_UNCOLLECTIBLE): S.UNCOLLECTIBLE,
    (S.UNCOLLECTIBLE, InvoiceAction.PAY): S.PAID,
    (S.UNCOLLECTIBLE, InvoiceAction.VOID): S.VOID,
}


@pytest.mark.parametrize("status", list(InvoiceStatus))
@pytest.mark.parametrize("action", list(InvoiceAction))
def test_apply_allows_exactly_stripes_transitions(
    status: InvoiceStatus, action: InvoiceAction
) -> None:
    expected = ALLOWED.get((status, action))
    if expected is None:
        with pytest.raises(InvoiceInvalidState) as refused:
            apply(status, action)
        assert refused.value.extra["current_status"] == status.value
        assert refused.value.status_code == 409
    else:
        assert apply(status, action) is expected


def test_final_statuses_have_no_way_out() -> None:
    assert {S.PAID, S.VOID} == FINAL
    assert not any(FINAL & t.sources for t in TRANSITIONS.values())


def test_totals_are_the_sum_of_the_lines() -> None:
    totals = totals_of([1000, 2555, -300])
    assert (totals.subtotal, totals.total, totals.amount_due) == (3255, 3255, 3255)
    assert totals_of([100, -500]).amount_due == 0
    assert totals_of([]).total == 0


def test_numbers_and_keys() -> None:
    assert invoice_number("ABC", 1) == "ABC-0001"
    assert invoice_number("ABC", 12345) == "ABC-12345"
    prefix = default_prefix("mer_01JD2Y3ZQ8W5Z3K4M6N7P8Q9R0")
    assert prefix == "N7P8Q9R0" and prefix.isalnum() and prefix.isupper()
    assert attempt_key("in_1", 2) == "invoice:in_1:attempt:2"
