"""The invoice state machine, as Stripe has it, and the invoice's arithmetic. Pure.

There is one transition table, ``TRANSITIONS``; ``apply`` decides a new status, and the SQL
layer guards every status write with ``allowed_sources`` from the same table::

    draft --finalize--> open --pay--> paid
                         |  \\--mark_uncollectible--> uncollectible --pay--> paid
                         \\--void--> void  <--void-- uncollectible

``paid`` and ``void`` are final.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from paygrid.domain.errors import PaygridError


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    PAID = "paid"
    VOID = "void"
    UNCOLLECTIBLE = "uncollectible"


class InvoiceAction(StrEnum):
    FINALIZE = "finalize"
    PAY = "pay"
    VOID = "void"
    MARK_UNCOLLECTIBLE = "mark_uncollectible"


class CollectionMethod(StrEnum):
    CHARGE_AUTOMATICALLY = "charge_automatically"
    SEND_INVOICE = "send_invoice"


class BillingReason(StrEnum):
    MANUAL = "manual"
    SUBSCRIPTION_CREATE = "subscription_create"
    SUBSCRIPTION_CYCLE = "subscription_cycle"
    SUBSCRIPTION_UPDATE = "subscription_update"


class LineType(StrEnum):
    INVOICEITEM = "invoiceitem"
    SUBSCRIPTION = "subscription"


class InvoiceInvalidState(PaygridError):
    """The invoice is not in a state that allows this operation."""

    status_code = 409
    error_type = "invalid_request_error"
    default_code = "invoice_invalid_state"


class InvoiceNoPendingItems(PaygridError):
    """The customer has no pending invoice items to invoice (in this currency)."""

    status_code = 400
    error_type = "invalid_request_error"
    default_code = "invoice_no_pending_items"


class InvoicePaymentMethodMissing(PaygridError):
    """The invoice has no payment method to charge: pass ``payment_method``, or give the
    customer a default one."""

    status_code = 400
    error_type = "invalid_request_error"
    default_code = "invoice_payment_method_missing"


class InvoiceItemInvoiced(PaygridError):
    """The invoice item is on an invoice already and can no longer be deleted."""

    status_code = 409
    error_type = "invalid_request_error"
    default_code = "invoice_item_invoiced"


@dataclass(frozen=True, slots=True)
class Transition:
    sources: frozenset[InvoiceStatus]
    target: InvoiceStatus


S = InvoiceStatus
FINAL: Final = frozenset({S.PAID, S.VOID})

TRANSITIONS: Final[dict[InvoiceAction, Transition]] = {
    InvoiceAction.FINALIZE: Transition(frozenset({S.DRAFT}), S.OPEN),
    InvoiceAction.PAY: Transition(frozenset({S.OPEN, S.UNCOLLECTIBLE}), S.PAID),
    InvoiceAction.VOID: Transition(frozenset({S.OPEN, S.UNCOLLECTIBLE}), S.VOID),
    InvoiceAction.MARK_UNCOLLECTIBLE: Transition(frozenset({S.OPEN}), S.UNCOLLECTIBLE),
}

_VERBS: Final[dict[InvoiceAction, str]] = {
    InvoiceAction.FINALIZE: "finalize",
    InvoiceAction.PAY: "pay",
    InvoiceAction.VOID: "void",
    InvoiceAction.MARK_UNCOLLECTIBLE: "mark as uncollectible",
}


def allowed_sources(action: InvoiceAction) -> frozenset[InvoiceStatus]:
    return TRANSITIONS[action].sources


def apply(status: InvoiceStatus, action: InvoiceAction) -> InvoiceStatus:
    """Return the status after ``action``, or raise ``InvoiceInvalidState``."""
    transition = TRANSITIONS[action]
    if status not in transition.sources:
        raise invalid_state(status, action)
    return transition.target


def invalid_state(status: InvoiceStatus | str, action: InvoiceAction) -> InvoiceInvalidState:
    return InvoiceInvalidState(
        f"You cannot {_VERBS[action]} this invoice because it has a status of {status}.",
        current_status=str(status),
    )


@dataclass(frozen=True, slots=True)
class Totals:
    """An invoice's money fields, integers in the currency's minor unit."""

    subtotal: int
    total: int
    amount_due: int


def totals_of(line_amounts: Iterable[int]) -> Totals:
    """The total is the sum of the lines exactly (no discounts or taxes yet); nothing is
    due below zero (a credit larger than the charges is not carried over yet)."""
    subtotal = sum(line_amounts)
    return Totals(subtotal=subtotal, total=subtotal, amount_due=max(subtotal, 0))


NUMBER_DIGITS: Final = 4
PREFIX_LENGTH: Final = 8


def default_prefix(merchant_id: str) -> str:
    """A merchant's invoice prefix until it sets one: the last characters of its id's ULID
    (random, upper case letters and digits), like Stripe's account-derived prefixes."""
    body = merchant_id.rpartition("_")[2]
    return "".join(c for c in body.upper() if c.isalnum())[-PREFIX_LENGTH:] or "INV"


def invoice_number(prefix: str, sequence: int) -> str:
    """``{prefix}-{0001}``: at least four digits, more once the sequence needs them."""
    return f"{prefix}-{sequence:0{NUMBER_DIGITS}d}"


def attempt_key(invoice_id: str, attempt: int) -> str:
    """The idempotency key of the ``attempt``-th payment of an invoice: a retry after a crash
    finds the payment the first run made instead of charging again."""
    return f"invoice:{invoice_id}:attempt:{attempt}"
