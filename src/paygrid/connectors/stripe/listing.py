"""Reading a Stripe account's PaymentIntents, refunds and charge fees created since a time,
for reconciliation (``paygrid.connectors.reconciliation``), with the official SDK: each list
filtered by ``created[gte]`` and walked with ``starting_after`` to its end. Every translation
is in the pure ``reconciliation`` module; a refusal or an unreadable answer is a
``ConnectorError``, which fails the run with its reason."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

import stripe

from paygrid.connectors.base import ConnectorError
from paygrid.connectors.stripe import mapping, payouts
from paygrid.connectors.stripe import reconciliation as recon_mapping
from paygrid.domain.reconciliation import ProviderCharge, ProviderRefund

T = TypeVar("T")
PAGE_SIZE: Final = 100
# Every list walks at most this many pages (a million objects): a bound, not a window.
MAX_PAGES: Final = 10_000

# An SDK list method (its params typed per resource; these are built as plain dicts).
Lister = Callable[[Any], Awaitable[Any]]


async def charges(client: stripe.StripeClient, since: int) -> list[ProviderCharge]:
    """The account's PaymentIntents created at or after ``since``, each with the fee of
    its latest charge's balance transaction (when Stripe has made one)."""
    intents = await _all(client.v1.payment_intents.list_async, {"created": {"gte": since}})
    transactions = await _all(
        client.v1.balance_transactions.list_async, {"type": "charge", "created": {"gte": since}}
    )
    fees = recon_mapping.charge_fees(transactions)
    return _mapped(lambda: [recon_mapping.charge(intent, fees) for intent in intents])


async def refunds(client: stripe.StripeClient, since: int) -> list[ProviderRefund]:
    """The account's refunds created at or after ``since`` (those of a PaymentIntent)."""
    items = await _all(client.v1.refunds.list_async, {"created": {"gte": since}})
    unnamed = [item for item in items if not item.get("payment_intent")]
    by_charge: dict[str, str] = {}
    if unnamed:  # an old-style refund names only its charge: find its PaymentIntent
        for item in unnamed:
            charge = await _reconciliation_read(
                client.v1.charges.retrieve_async(str(item.get("charge")))
            )
            intent = charge.to_dict().get("payment_intent")
            if isinstance(intent, str) and intent:
                by_charge[str(charge.id)] = intent
    found = _mapped(lambda: [recon_mapping.refund(item, by_charge) for item in items])
    return [r for r in found if r is not None]


async def _all(lister: Lister, params: dict[str, Any]) -> list[mapping.Json]:
    rows: list[mapping.Json] = []
    after: str | None = None
    for _ in range(MAX_PAGES):
        page = await _reconciliation_read(
            lister({**params, "limit": PAGE_SIZE, **({"starting_after": after} if after else {})})
        )
        rows.extend(item.to_dict() for item in page.data)
        if not page.has_more or not page.data:
            return rows
        after = page.data[-1].id
    raise ConnectorError(f"Stripe listed more than {MAX_PAGES * PAGE_SIZE} objects")


def _mapped(translate: Callable[[], T]) -> T:
    try:
        return translate()
    except mapping.UnmappedStatus as unmapped:  # a bug to fix: the run fails, saying so
        raise ConnectorError(str(unmapped)) from unmapped


async def _reconciliation_read(request: Awaitable[T]) -> T:
    return await payouts.read(request, "reconciliation")
