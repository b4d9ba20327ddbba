"""The simulator's tokens name what the simulator needs (the last four digits for its 3-D
Secure page, the test behaviour) so that tokenizing writes nothing; they never hold a card
number."""

from __future__ import annotations

from paygrid.connectors.simulator import store
from paygrid.connectors.simulator.cards import Behavior


def test_a_token_names_last4_and_behaviour() -> None:
    token = store.new_token("3155", Behavior.REQUIRE_3DS.value)
    assert token.startswith("simtok_")
    assert store.facts_in(token) == ("3155", "require_3ds")
    assert "4000002500003155" not in token


def test_tokens_issued_before_name_nothing() -> None:
    assert store.facts_in("simtok_01M96ZYWZWCFHQJ9M2CVS64JZW") is None
    assert store.facts_in("tok_visa-4242-succeed") is None
