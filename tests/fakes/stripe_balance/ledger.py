"""The Stripe balance fake's state: per secret key, its payouts and balance transactions, and
the discrepancies injected into what the fake reports. Objects are built with exactly the
fields of Stripe's own fixtures (``balance_transaction``, ``payout``), which
tests/connectors/test_stripe_balance_fake.py checks key by key and type by type."""

from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

# Stripe's standard US card pricing: 2.9 % + 30 cents.
FEE_PERCENT_TENTHS = 29
FEE_FIXED = 30
TWO_DAYS = 2 * 24 * 3600
PAYOUT_STATUSES = frozenset({"paid", "pending", "in_transit", "canceled", "failed"})


def stripe_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def default_fee(amount: int) -> int:
    return (amount * FEE_PERCENT_TENTHS + 500) // 1000 + FEE_FIXED


@dataclass
class Account:
    """One secret key's view of the balance (tests using their own key never meet)."""

    payouts: dict[str, dict[str, Any]] = field(default_factory=dict)
    transactions: dict[str, dict[str, Any]] = field(default_factory=dict)
    payout_of: dict[str, str] = field(default_factory=dict)  # txn id -> payout id
    settled_sources: set[str] = field(default_factory=set)  # ch_/re_ ids already paid out
    fees: dict[str, int] = field(default_factory=dict)  # injected fee by PaymentIntent
    amounts: dict[str, int] = field(default_factory=dict)  # injected amount by PaymentIntent
    statuses: dict[str, str] = field(default_factory=dict)  # injected status by PaymentIntent
    hidden: set[str] = field(default_factory=set)  # PaymentIntents missing at the provider
    extra_intents: list[str] = field(default_factory=list)  # unknown charges, to pay out
    extra_refunds: list[str] = field(default_factory=list)  # dashboard refunds, to pay out
    # PaymentIntents and refunds this key created, oldest first (localstripe shares one
    # store across keys; the fake's lists show a key only its own).
    owned: dict[str, list[str]] = field(
        default_factory=lambda: {"payment_intent": [], "refund": []}
    )


class Ledger:
    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}
        self._clock = itertools.count(int(time.time()))

    def account(self, key: str) -> Account:
        return self.accounts.setdefault(key, Account())

    def now(self) -> int:
        return max(int(time.time()), next(self._clock))


def balance_transaction(
    *,
    amount: int,
    fee: int,
    net: int,
    currency: str,
    source: str,
    type_: str,
    created: int,
    description: str,
) -> dict[str, Any]:
    """A balance transaction with the fixture's fields (``reporting_category`` is the type
    for charges and refunds, as Stripe reports them)."""
    fee_details = (
        [
            {
                "amount": fee,
                "application": None,
                "currency": currency,
                "description": "Stripe processing fees",
                "type": "stripe_fee",
            }
        ]
        if fee
        else []
    )
    return {
        "amount": amount,
        "available_on": created + TWO_DAYS,
        "created": created,
        "currency": currency,
        "description": description,
        "exchange_rate": None,
        "fee": fee,
        "fee_details": fee_details,
        "id": stripe_id("txn"),
        "net": net,
        "object": "balance_transaction",
        "reporting_category": "charge" if type_ == "charge" else "refund",
        "source": source,
        "status": "available",
        "type": type_,
        "balance_type": "payments",
    }


def payout(*, amount: int, currency: str, status: str, created: int, txn: str) -> dict[str, Any]:
    """A payout with the fixture's fields."""
    return {
        "amount": amount,
        "application_fee": None,
        "application_fee_amount": None,
        "arrival_date": created + TWO_DAYS,
        "automatic": True,
        "balance_transaction": txn,
        "created": created,
        "currency": currency,
        "description": "STRIPE PAYOUT",
        "destination": stripe_id("ba"),
        "failure_balance_transaction": None,
        "failure_code": "could_not_process" if status == "failed" else None,
        "failure_message": "The bank could not process this payout."
        if status == "failed"
        else None,
        "id": stripe_id("po"),
        "livemode": False,
        "metadata": {},
        "method": "standard",
        "object": "payout",
        "original_payout": None,
        "reconciliation_status": "completed" if status == "paid" else "in_progress",
        "reversed_by": None,
        "source_type": "card",
        "statement_descriptor": None,
        "status": status,
        "type": "bank_account",
        "trace_id": {"status": "pending" if status != "paid" else "supported", "value": None},
        "payout_method": None,
    }


def stripe_list(url: str, data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def stripe_error(status: int, message: str, param: str | None = None) -> dict[str, Any]:
    return {
        "error": {
            "type": "invalid_request_error",
            "code": "resource_missing" if status == 404 else "parameter_invalid",
            "message": message,
            "param": param,
        }
    }
