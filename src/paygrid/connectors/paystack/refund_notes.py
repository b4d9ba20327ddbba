"""The ``merchant_note`` paygrid gives each Paystack refund, and reading it back.

Paystack's refund API keeps no metadata and no idempotency key, and the free-text
``merchant_note`` is the one field it stores with a refund and returns on ``GET /refund``
and ``GET /refund/{id}``. paygrid writes::

    paygrid refund <refund id>
    paygrid refund <refund id> key <merchant's Idempotency-Key>

so that a person can match the refund in Paystack's dashboard, and ``paygrid restore``
can re-import a refund made after the backup under its paygrid id and the merchant's key
(as Stripe's refund metadata allows). The refund id (``re_`` and letters or digits) has no
space and the key comes last, so a key may hold any text, `` key `` included: the note is
read as the id up to the first space, then everything after `` key ``. Any other note (a
refund made in Paystack's dashboard, or one from a paygrid before this format, which wrote
``paygrid:<refund id>``) reads as nothing of paygrid's."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

PREFIX: Final = "paygrid refund "
KEY_SEPARATOR: Final = " key "
_NOTE: Final = re.compile(r"paygrid refund (re_[0-9A-Za-z]+)(?: key (.+))?", re.DOTALL)


@dataclass(frozen=True, slots=True)
class RefundNote:
    """What a refund's note says of paygrid's: both None for a note paygrid did not write."""

    refund_id: str | None = None
    idempotency_key: str | None = None


NOT_PAYGRIDS: Final = RefundNote()


def refund_note(refund_id: str, merchant_idempotency_key: str | None) -> str:
    """The note of a refund paygrid makes: its id and, when the merchant sent one, its key."""
    if not merchant_idempotency_key:
        return PREFIX + refund_id
    return PREFIX + refund_id + KEY_SEPARATOR + merchant_idempotency_key


def read_refund_note(note: object) -> RefundNote:
    """paygrid's refund id and the merchant's key from a refund's ``merchant_note``; never
    raises: anything not written by ``refund_note`` is ``NOT_PAYGRIDS``."""
    if not isinstance(note, str):
        return NOT_PAYGRIDS
    found = _NOTE.fullmatch(note)
    if found is None:
        return NOT_PAYGRIDS
    return RefundNote(found.group(1), found.group(2))
