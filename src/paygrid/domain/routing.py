"""Which connector accounts a payment is sent to, and in what order. Pure: the rules and
accounts come in, an ordered list of account ids comes out.

Rules are evaluated in priority order; the first rule whose conditions all hold gives the
destinations. Destinations that are disabled, unknown, or do not take the payment's currency
are skipped, and a rule left with none falls through to the next rule. Without a matching
rule the defaults apply: first the accounts whose provider prefers the payment's currency,
then by the provider's rank, then by account id. Each provider's package declares its rank and
preferred currencies (Paystack first for NGN, GHS, KES and ZAR; otherwise Stripe, then the
others); they reach this module on the accounts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

UNRANKED: Final = 100  # after every provider that declares a rank


@dataclass(frozen=True, slots=True)
class RoutingContext:
    payment_id: str  # weighted splits hash it, so retries of one payment pick the same account
    currency: str
    amount: int
    payment_method_type: str  # card, bank, ussd, mobile_money, bank_transfer or qr
    card_country: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    provider: str
    currencies: frozenset[str]
    enabled: bool = True
    # Its provider's place in the default order: the currencies it comes first for, and
    # its rank otherwise (lower first).
    preferred_currencies: frozenset[str] = frozenset()
    rank: int = UNRANKED


@dataclass(frozen=True, slots=True)
class Conditions:
    currencies: frozenset[str] | None = None
    amount_gte: int | None = None
    amount_lte: int | None = None
    payment_method_types: frozenset[str] | None = None
    card_countries: frozenset[str] | None = None
    metadata: Mapping[str, str] | None = None

    def match(self, ctx: RoutingContext) -> bool:
        if self.currencies is not None and ctx.currency not in self.currencies:
            return False
        if self.amount_gte is not None and ctx.amount < self.amount_gte:
            return False
        if self.amount_lte is not None and ctx.amount > self.amount_lte:
            return False
        if (
            self.payment_method_types is not None
            and ctx.payment_method_type not in self.payment_method_types
        ):
            return False
        if self.card_countries is not None and (
            ctx.card_country is None or ctx.card_country.upper() not in self.card_countries
        ):
            return False
        return self.metadata is None or all(
            ctx.metadata.get(key) == value for key, value in self.metadata.items()
        )


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    conditions: Conditions
    destinations: tuple[tuple[str, int], ...]  # (account id, weight)
    weighted: bool = False


def route(
    rules: Sequence[Rule], accounts: Sequence[Account], ctx: RoutingContext
) -> tuple[list[str], str | None]:
    """The account ids to try, in order, and the id of the rule that chose them (``None``
    for the defaults)."""
    usable = {a.id: a for a in accounts if a.enabled and ctx.currency in a.currencies}
    for rule in rules:
        if not rule.conditions.match(ctx):
            continue
        chosen = _ordered_destinations(rule, ctx.payment_id, usable)
        if chosen:
            return chosen, rule.id
    return default_order(list(usable.values()), ctx.currency), None


def default_order(accounts: Sequence[Account], currency: str) -> list[str]:
    ranked = sorted(accounts, key=lambda a: (currency not in a.preferred_currencies, a.rank, a.id))
    return [a.id for a in ranked]


def _ordered_destinations(rule: Rule, payment_id: str, usable: Mapping[str, Account]) -> list[str]:
    # Weigh only the usable destinations, so a disabled account's share is spread over the
    # others by weight rather than all going to the first one listed.
    destinations = [(account_id, w) for account_id, w in rule.destinations if account_id in usable]
    ids = [account_id for account_id, _ in destinations]
    if not rule.weighted:
        return ids
    first = weighted_pick(destinations, payment_id)
    if first is None:
        return ids
    return [first, *(account_id for account_id in ids if account_id != first)]


def weighted_pick(destinations: Sequence[tuple[str, int]], key: str) -> str | None:
    """Pick one destination with probability proportional to its weight, stably for ``key``
    (a SHA-256 of the key, not Python's salted ``hash``, so every process agrees)."""
    total = sum(weight for _, weight in destinations)
    if total <= 0:
        return None
    point = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % total
    for account_id, weight in destinations:
        if point < weight:
            return account_id
        point -= weight
    raise AssertionError("unreachable: point < total")
