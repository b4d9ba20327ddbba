"""The pure routing decision: rule conditions, priority order, fall-through to later rules
and to the defaults, weighted splits, and the default provider order per currency."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest

from paygrid.connectors.registry import BUILTIN_PROVIDERS
from paygrid.domain.routing import (
    Account,
    Conditions,
    RoutingContext,
    Rule,
    default_order,
    route,
    weighted_pick,
)


def account(account_id: str, provider: str, currencies: frozenset[str]) -> Account:
    """An account placed in the default order as its provider's package declares."""
    facts = BUILTIN_PROVIDERS.facts(provider)
    return Account(
        account_id,
        provider,
        currencies,
        preferred_currencies=facts.preferred_currencies,
        rank=facts.default_rank,
    )


ALL = frozenset({"USD", "EUR", "NGN", "GHS", "KES", "ZAR", "GBP"})
STRIPE = account("ca_1stripe", "stripe", ALL)
PAYSTACK = account("ca_2paystack", "paystack", frozenset({"NGN", "GHS", "KES", "ZAR", "USD"}))
SIM_A = account("ca_3sim_a", "simulator", ALL)
SIM_B = account("ca_4sim_b", "simulator", ALL)
ACCOUNTS = (STRIPE, PAYSTACK, SIM_A, SIM_B)
CTX = RoutingContext(
    payment_id="pay_1",
    currency="USD",
    amount=5_000,
    payment_method_type="card",
    card_country="US",
    metadata={"tier": "gold", "shop": "eu"},
)


def rule(rule_id: str, *accounts: str, weighted: bool = False, **conditions: object) -> Rule:
    return Rule(
        rule_id,
        Conditions(**conditions),  # type: ignore[arg-type]
        tuple((a, 1) for a in accounts),
        weighted=weighted,
    )


@pytest.mark.parametrize(
    ("conditions", "matches"),
    [
        ({}, True),
        ({"currencies": frozenset({"USD", "EUR"})}, True),
        ({"currencies": frozenset({"EUR"})}, False),
        ({"amount_gte": 5_000}, True),
        ({"amount_gte": 5_001}, False),
        ({"amount_lte": 5_000}, True),
        ({"amount_lte": 4_999}, False),
        ({"amount_gte": 1_000, "amount_lte": 10_000}, True),
        ({"payment_method_types": frozenset({"card"})}, True),
        ({"payment_method_types": frozenset({"bank", "ussd"})}, False),
        ({"card_countries": frozenset({"US", "CA"})}, True),
        ({"card_countries": frozenset({"NG"})}, False),
        ({"metadata": {"tier": "gold"}}, True),
        ({"metadata": {"tier": "gold", "shop": "eu"}}, True),
        ({"metadata": {"tier": "silver"}}, False),
        ({"metadata": {"missing": "x"}}, False),
        ({"metadata": {}}, True),
        # Every condition must hold.
        ({"currencies": frozenset({"USD"}), "amount_gte": 10_000}, False),
        ({"currencies": frozenset({"USD"}), "metadata": {"tier": "gold"}}, True),
    ],
)
def test_conditions(conditions: dict[str, object], matches: bool) -> None:
    assert Conditions(**conditions).match(CTX) is matches  # type: ignore[arg-type]


def test_card_country_condition_needs_a_known_country_and_ignores_case() -> None:
    condition = Conditions(card_countries=frozenset({"US"}))
    assert condition.match(replace(CTX, card_country="us"))
    assert not condition.match(replace(CTX, card_country=None))


def test_first_matching_rule_wins_in_the_order_given() -> None:
    rules = [
        rule("rr_eur", SIM_A.id, currencies=frozenset({"EUR"})),
        rule("rr_big", SIM_B.id, SIM_A.id, amount_gte=1_000),
        rule("rr_any", SIM_A.id),
    ]
    assert route(rules, ACCOUNTS, CTX) == ([SIM_B.id, SIM_A.id], "rr_big")
    assert route(rules, ACCOUNTS, replace(CTX, currency="EUR")) == ([SIM_A.id], "rr_eur")
    assert route(rules, ACCOUNTS, replace(CTX, amount=100)) == ([SIM_A.id], "rr_any")


def test_unusable_destinations_are_skipped_and_an_empty_rule_falls_through() -> None:
    disabled_b = replace(SIM_B, enabled=False)
    usd_only = account("ca_5usd", "simulator", frozenset({"USD"}))
    accounts = (STRIPE, PAYSTACK, SIM_A, disabled_b, usd_only)
    rules = [
        rule("rr_dead", SIM_B.id, "ca_unknown"),  # disabled and unknown: falls through
        rule("rr_mixed", SIM_B.id, usd_only.id, SIM_A.id),
    ]
    assert route(rules, accounts, CTX) == ([usd_only.id, SIM_A.id], "rr_mixed")
    # In EUR the USD-only account is skipped too.
    assert route(rules, accounts, replace(CTX, currency="EUR")) == ([SIM_A.id], "rr_mixed")
    only_dead = [rules[0]]
    ids, chosen_by = route(only_dead, accounts, CTX)
    assert chosen_by is None
    assert ids == [STRIPE.id, PAYSTACK.id, SIM_A.id, usd_only.id]


def test_defaults_without_rules() -> None:
    assert route([], ACCOUNTS, CTX) == ([STRIPE.id, PAYSTACK.id, SIM_A.id, SIM_B.id], None)
    # EUR: Paystack does not take it.
    assert route([], ACCOUNTS, replace(CTX, currency="EUR")) == (
        [STRIPE.id, SIM_A.id, SIM_B.id],
        None,
    )
    assert route([], (), CTX) == ([], None)
    no_matching_rule = [rule("rr_eur", SIM_A.id, currencies=frozenset({"EUR"}))]
    assert route(no_matching_rule, ACCOUNTS, CTX)[1] is None


@pytest.mark.parametrize("currency", ["NGN", "GHS", "KES", "ZAR"])
def test_paystack_first_for_african_currencies(currency: str) -> None:
    assert default_order(ACCOUNTS, currency)[:2] == [PAYSTACK.id, STRIPE.id]
    ids, _ = route([], ACCOUNTS, replace(CTX, currency=currency))
    assert ids[:2] == [PAYSTACK.id, STRIPE.id]


@pytest.mark.parametrize("currency", ["USD", "EUR", "GBP"])
def test_stripe_first_otherwise(currency: str) -> None:
    assert default_order(ACCOUNTS, currency)[0] == STRIPE.id


def test_default_order_is_by_provider_then_age_whatever_order_accounts_come_in() -> None:
    second_stripe = account("ca_0stripe", "stripe", ALL)
    shuffled = (SIM_B, PAYSTACK, SIM_A, STRIPE, second_stripe)
    assert default_order(shuffled, "USD") == [
        second_stripe.id,
        STRIPE.id,
        PAYSTACK.id,
        SIM_A.id,
        SIM_B.id,
    ]
    assert default_order(shuffled, "NGN")[:3] == [PAYSTACK.id, second_stripe.id, STRIPE.id]


def test_disabled_accounts_are_never_defaults() -> None:
    accounts = (replace(STRIPE, enabled=False), SIM_A)
    assert route([], accounts, CTX) == ([SIM_A.id], None)


def test_weighted_pick_is_stable_and_proportional() -> None:
    destinations = (("ca_a", 1), ("ca_b", 3))
    picks = Counter(weighted_pick(destinations, f"pay_{n}") for n in range(200))
    assert set(picks) == {"ca_a", "ca_b"}
    assert 120 <= picks["ca_b"] <= 180  # 150 expected
    for n in range(20):
        key = f"pay_{n}"
        assert weighted_pick(destinations, key) == weighted_pick(destinations, key)


def test_weighted_pick_edge_cases() -> None:
    assert weighted_pick((("ca_a", 0), ("ca_b", 0)), "pay_1") is None
    assert weighted_pick((), "pay_1") is None
    assert {weighted_pick((("ca_a", 0), ("ca_b", 5)), f"pay_{n}") for n in range(50)} == {"ca_b"}


def test_weighted_rule_puts_the_pick_first_then_the_rest_in_order() -> None:
    weighted = Rule(
        "rr_split",
        Conditions(),
        ((SIM_A.id, 1), (SIM_B.id, 1), (STRIPE.id, 0)),
        weighted=True,
    )
    firsts = set()
    for n in range(40):
        ctx = replace(CTX, payment_id=f"pay_{n}")
        ids, chosen_by = route([weighted], ACCOUNTS, ctx)
        assert chosen_by == "rr_split"
        first = weighted_pick(weighted.destinations, ctx.payment_id)
        assert ids[0] == first
        assert ids == [first, *(a for a in (SIM_A.id, SIM_B.id, STRIPE.id) if a != first)]
        assert route([weighted], ACCOUNTS, ctx) == (ids, chosen_by)  # stable per payment
        firsts.add(first)
    assert firsts == {SIM_A.id, SIM_B.id}
    all_zero = Rule("rr_zero", Conditions(), ((SIM_B.id, 0), (SIM_A.id, 0)), weighted=True)
    assert route([all_zero], ACCOUNTS, CTX) == ([SIM_B.id, SIM_A.id], "rr_zero")


def test_priority_split_keeps_the_listed_order() -> None:
    listed = rule("rr_list", SIM_B.id, STRIPE.id, SIM_A.id)
    assert route([listed], ACCOUNTS, CTX) == ([SIM_B.id, STRIPE.id, SIM_A.id], "rr_list")


def test_a_disabled_destinations_share_is_spread_by_weight() -> None:
    third = account("ca_6sim_c", "simulator", ALL)
    split = Rule(
        "rr_split", Conditions(), ((SIM_A.id, 1), (SIM_B.id, 1), (third.id, 2)), weighted=True
    )
    accounts = (SIM_A, SIM_B, replace(third, enabled=False))
    firsts = Counter(
        route([split], accounts, replace(CTX, payment_id=f"pay_{n}"))[0][0] for n in range(400)
    )
    assert set(firsts) == {SIM_A.id, SIM_B.id}
    assert 160 <= firsts[SIM_A.id] <= 240  # 200 expected: A and B weigh the same
