"""The ``merchant_note`` paygrid gives a Paystack refund (``refund_notes``): it reads back as
the refund id and the merchant's key whatever the key holds, and any note paygrid did not
write reads as nothing of paygrid's, without raising. Reconciliation's refund mapping (which
the restore's re-sync lists refunds with) fills the refund record from it."""

from __future__ import annotations

import string

import pytest

from paygrid.connectors.paystack import reconciliation
from paygrid.connectors.paystack.refund_notes import (
    NOT_PAYGRIDS,
    RefundNote,
    read_refund_note,
    refund_note,
)

REFUND_ID = "re_01JEXAMPLE7Q2ZC3V0DMW8K5TN"
AWKWARD_KEYS = [
    "order-42",
    "a",
    "key",
    " key ",
    "refund 42 key 7 key",  # the separator inside the key
    "paygrid refund re_OTHER key x",  # a whole note inside the key
    'quotes " \' and {"json": [1]}',
    "  leading and trailing spaces  ",
    string.printable.strip("\t\n\r\x0b\x0c"),  # every printable ASCII character
    "k" * 255,  # the longest key paygrid's API takes
]


@pytest.mark.parametrize("key", AWKWARD_KEYS)
def test_a_note_gives_back_the_refund_id_and_the_key(key: str) -> None:
    note = refund_note(REFUND_ID, key)
    assert note.startswith(f"paygrid refund {REFUND_ID} key ")
    assert read_refund_note(note) == RefundNote(REFUND_ID, key)


def test_a_refund_without_a_merchant_key_names_only_its_id() -> None:
    assert refund_note(REFUND_ID, None) == f"paygrid refund {REFUND_ID}"
    assert read_refund_note(refund_note(REFUND_ID, None)) == RefundNote(REFUND_ID, None)


@pytest.mark.parametrize(
    "note",
    [
        None,
        42,
        ["paygrid refund re_1"],
        "",
        "Customer asked for it",  # a refund made in Paystack's dashboard
        "paygrid:re_01JEXAMPLE7Q2ZC3V0DMW8K5TN",  # the note of a paygrid before this format
        "paygrid refund",
        "paygrid refund ",
        "paygrid refund pay_1 key order-42",  # not a refund id
        "paygrid refund re_ key order-42",
        "paygrid refund re_1 key ",  # an empty key
        "paygrid refund re_1 order-42",
        "paygrid refund re_1\nkey order-42",
        "Paygrid refund re_1 key order-42",
        " paygrid refund re_1 key order-42",
        "paygrid refund re_1 ",
    ],
)
def test_a_note_paygrid_did_not_write_names_nothing_and_never_raises(note: object) -> None:
    assert read_refund_note(note) == NOT_PAYGRIDS == RefundNote(None, None)


def _listed(note: object) -> dict[str, object]:
    """An item of ``GET /refund``'s ``data`` (the fields the mapping reads)."""
    return {
        "id": 3_190_000,
        "transaction_reference": "att_1",
        "amount": 4_000,
        "currency": "NGN",
        "status": "processed",
        "createdAt": "2026-12-07T10:00:00.000Z",
        "merchant_note": note,
    }


def test_a_listed_refund_carries_paygrids_refund_id_and_key_from_its_note() -> None:
    mapped = reconciliation.refund(_listed(refund_note(REFUND_ID, "order 42 key b")))
    assert mapped is not None
    assert (mapped.reference, mapped.charge_reference, mapped.amount, mapped.succeeded) == (
        "3190000",
        "att_1",
        4_000,
        True,
    )
    assert (mapped.refund_id, mapped.idempotency_key) == (REFUND_ID, "order 42 key b")


@pytest.mark.parametrize("note", ["Refund requested", "", None])
def test_a_dashboard_refund_maps_to_no_paygrid_refund(note: object) -> None:
    item = _listed(note)
    if note is None:
        del item["merchant_note"]
    mapped = reconciliation.refund(item)
    assert mapped is not None
    assert (mapped.refund_id, mapped.idempotency_key) == (None, None)
