"""The dashboard's payment states: refund states derived from the amounts, and labels."""

from __future__ import annotations

import pytest

from paygrid.dashboard.states import SHOWN_STATES, label, shown_state
from paygrid.domain.payments import PaymentStatus


@pytest.mark.parametrize(
    ("status", "received", "refunded", "shown"),
    [
        (PaymentStatus.SUCCEEDED, 1000, 0, "succeeded"),
        (PaymentStatus.SUCCEEDED, 1000, 1, "partially_refunded"),
        (PaymentStatus.SUCCEEDED, 1000, 999, "partially_refunded"),
        (PaymentStatus.SUCCEEDED, 1000, 1000, "refunded"),
        (PaymentStatus.REQUIRES_CAPTURE, 0, 0, "requires_capture"),
        ("canceled", 0, 0, "canceled"),
    ],
)
def test_refund_states_come_from_the_amounts(
    status: str, received: int, refunded: int, shown: str
) -> None:
    assert shown_state(status, received, refunded) == shown


def test_every_state_has_a_label_for_people() -> None:
    assert [label(s) for s in SHOWN_STATES] == [
        "Requires payment method",
        "Requires confirmation",
        "Requires action",
        "Processing",
        "Requires capture",
        "Succeeded",
        "Partially refunded",
        "Refunded",
        "Canceled",
    ]
    assert label("requested_by_customer") == "Requested by customer"
    assert label(None) == ""
