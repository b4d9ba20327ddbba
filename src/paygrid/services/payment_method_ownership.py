"""Who may use a saved payment method: the one rule every payment path asks (create,
confirm, the hosted checkout through confirm, and any future caller such as billing).

- A method attached to a customer pays only for payments of that customer. A payment that
  names no customer is refused too (like Stripe: name the customer), so an off-session
  charge can never take a saved card without saying whose it is.
- An unattached method pays for one payment only: the payment that first held it or made
  an attempt with it (retries of that payment included). Its creator is the merchant and
  mode whose key made it (lookups are scoped to them, so nobody else can even name it): the
  hosted checkout's page tokenizes with the merchant's publishable key and pays the
  session's payment with it.
- A method detached from its customer (explicitly, or because the customer was deleted or
  erased) pays for nothing until it is attached again.

The rule is checked when the method is read, and again in the statement that writes the
payment or its attempt, on the method's locked row (``pm_db.lock_for_use``): that statement
binds an unattached method to its payment, so of two concurrent first uses one wins, and a
payment racing a detach or its customer's deletion either commits first (the method is then
detached) or is refused. The second check costs no round trip.
"""

from __future__ import annotations

from typing import NoReturn

from paygrid.db import payment_methods as pm_db
from paygrid.db.executor import Executor
from paygrid.db.payment_methods import MethodForPayment, PaymentMethodRow
from paygrid.domain.errors import (
    InvalidRequest,
    PaymentMethodAlreadyAttached,
    PaymentMethodNotOwned,
)
from paygrid.services.context import Tenant


async def usable_method(
    conn: Executor,
    tenant: Tenant,
    pm_id: str,
    *,
    customer_id: str | None,
    payment_id: str | None = None,
    idempotency_key: str | None = None,
) -> PaymentMethodRow | None:
    """The saved method ``pm_id`` if the payment (``payment_id``, or the one being created
    with ``idempotency_key``) of ``customer_id`` may use it; ``None`` if there is no such
    method. Raises when the method belongs to someone else. One query."""
    found = await pm_db.get_for_payment(
        conn,
        tenant.merchant_id,
        tenant.livemode,
        pm_id,
        payment_id=payment_id,
        idempotency_key=idempotency_key,
    )
    if found is None:
        return None
    check_use(found, customer_id=customer_id)
    return found.method


def use_of(method: PaymentMethodRow, *, payment_id: str, customer_id: str | None) -> pm_db.Use:
    """What the payment's write re-checks: the use ``check_use`` just allowed."""
    return pm_db.Use(method.id, payment_id, customer_id, method.attached)


async def refuse_lost_race(
    conn: Executor, tenant: Tenant, use: pm_db.Use, *, idempotency_key: str | None = None
) -> NoReturn:
    """The payment's write found the method no longer usable (a concurrent first use, detach
    or customer deletion committed meanwhile): refuse with what the rule now says."""
    await usable_method(
        conn,
        tenant,
        use.method_id,
        customer_id=use.customer_id,
        payment_id=use.payment_id,
        idempotency_key=idempotency_key,
    )
    raise PaymentMethodNotOwned(
        f"The payment method '{use.method_id}' changed while this payment was being made; "
        "it can no longer pay for it.",
        param="payment_method",
    )


def check_use(found: MethodForPayment, *, customer_id: str | None) -> None:
    """Refuse a payment of ``customer_id`` paying with the method ``found`` (read by
    ``pm_db.get_for_payment``) unless the rule above allows it. Messages never name the
    owner: the hosted checkout shows them to the paying customer."""
    method = found.method
    pm_id = method.id
    owner = method.customer_id
    if owner is not None and customer_id is None:
        raise InvalidRequest(
            f"The payment method '{pm_id}' is attached to a customer; pass that customer "
            "as `customer` to pay with it.",
            param="customer",
            code="parameter_missing",
        )
    if owner is not None and owner != customer_id:
        raise PaymentMethodNotOwned(
            f"The payment method '{pm_id}' belongs to another customer; it can only be used "
            "for payments of the customer it is attached to.",
            param="payment_method",
        )
    if owner is None and method.detached_at is not None:
        raise PaymentMethodNotOwned(
            f"The payment method '{pm_id}' was detached from its customer and cannot be "
            "used again; attach it to a customer first.",
            param="payment_method",
        )
    if owner is None and found.used_by_other_payment:
        raise PaymentMethodNotOwned(
            f"The payment method '{pm_id}' is not attached to a customer and was already "
            "used for another payment; an unattached method pays for one payment only. "
            "Attach it to a customer to use it again.",
            param="payment_method",
        )


def check_attach(method: PaymentMethodRow, customer_id: str) -> None:
    """Attaching moves nothing: a method attached to another customer must be detached
    first (as Stripe does); attaching to its own customer again changes nothing."""
    owner = method.customer_id
    if owner is not None and owner != customer_id:
        raise attached_elsewhere(method.id)


def attached_elsewhere(pm_id: str) -> PaymentMethodAlreadyAttached:
    return PaymentMethodAlreadyAttached(
        f"The payment method '{pm_id}' is attached to another customer; detach it first to "
        "attach it elsewhere.",
        param="payment_method",
    )
