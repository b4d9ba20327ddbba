"""Every decline code a connector can return has a class in dunning's one table, and the
table says what issue 14 lists (hard, soft, action)."""

from __future__ import annotations

from typing import get_args

import pytest

from paygrid.connectors.paystack import mapping as paystack
from paygrid.connectors.simulator.connector import DECLINES
from paygrid.connectors.stripe import mapping as stripe
from paygrid.domain.dunning import CLASSIFICATION, DeclineClass, classify


def connector_codes() -> set[str]:
    """The codes and decline codes our connectors put on a ``Decline``, read from their
    own tables: a code added there without a class here fails below."""
    codes: set[str] = set(get_args(stripe.DeclineCode))
    codes |= set(stripe._BY_DECLINE_CODE) | set(stripe._BY_DECLINE_CODE.values())
    codes |= set(stripe._BY_CODE.values())
    for decline in DECLINES.values():
        codes.add(decline.code)
        if decline.decline_code is not None:
            codes.add(decline.decline_code)
    for _, code in paystack._DECLINE_KEYWORDS:
        codes.add(code)
    for code, decline_code in paystack._GATEWAY_DECLINES.values():
        codes |= {code, decline_code}
    fallback = paystack.decline_for("Declined by the issuer")
    codes |= {fallback.code, fallback.decline_code or fallback.code}
    return codes


@pytest.mark.parametrize("code", sorted(connector_codes()))
def test_every_code_a_connector_returns_has_a_class(code: str) -> None:
    assert code in CLASSIFICATION, f"{code} has no dunning class in domain/dunning.py"
    assert classify(code, None) is CLASSIFICATION[code]


HARD = ["stolen_card", "lost_card", "pickup_card", "fraudulent", "invalid_account"]
HARD += ["card_not_supported", "expired_card"]
SOFT = ["insufficient_funds", "processing_error", "try_again_later", "issuer_not_available"]
SOFT += ["do_not_honor", "generic_decline", "card_declined"]


@pytest.mark.parametrize(
    ("code", "expected"),
    [(c, DeclineClass.HARD) for c in HARD]
    + [(c, DeclineClass.SOFT) for c in SOFT]
    + [("authentication_required", DeclineClass.ACTION)],
)
def test_the_issues_classes(code: str, expected: DeclineClass) -> None:
    assert CLASSIFICATION[code] is expected


def test_the_decline_code_is_more_specific_than_the_code() -> None:
    assert classify("card_declined", "stolen_card") is DeclineClass.HARD
    assert classify("card_declined", "generic_decline") is DeclineClass.SOFT
    assert classify("card_declined", "authentication_required") is DeclineClass.ACTION


def test_an_unknown_code_is_retried_on_schedule() -> None:
    assert classify("something_new", "never_seen") is DeclineClass.SOFT
    assert classify("expired_card", "never_seen") is DeclineClass.HARD
    assert classify(None, None) is DeclineClass.SOFT
