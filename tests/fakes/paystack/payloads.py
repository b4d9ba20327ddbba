"""The JSON the fake answers with, shaped after Paystack's OpenAPI response schemas and its
documented webhook samples (tests/connectors/test_paystack_fake.py checks both)."""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.paystack.state import (
    ApiError,
    Authorization,
    Customer,
    Merchant,
    Refund,
    Transaction,
)

DOMAIN = "test"


def envelope(message: str, data: object, **extra: object) -> dict[str, Any]:
    return {"status": True, "message": message, "data": data, **extra}


def error(err: ApiError) -> dict[str, Any]:
    body: dict[str, Any] = {"status": False, "message": err.message}
    if err.type is not None:
        body["type"] = err.type
    if err.code is not None:
        body["code"] = err.code
    return body


def verified(t: Transaction) -> dict[str, Any]:
    """``GET /transaction/verify/{reference}``'s ``data``."""
    return {
        **_common(t),
        "receipt_number": None,
        "ip_address": "127.0.0.1",
        "metadata": t.metadata,
        "fees_split": None,
        "authorization": authorization(t.authorization, list_shape=False),
        "customer": customer(t.customer),
        "plan": None,
        "plan_object": {},
        "paidAt": t.paid_at,
        "transaction_date": t.created_at,
        "fees_breakdown": None,
        "connect": None,
    }


def listed(t: Transaction) -> dict[str, Any]:
    """One item of ``GET /transaction``."""
    metadata = t.metadata if isinstance(t.metadata, dict) else _decoded(t.metadata)
    return {
        **_common(t),
        "ip_address": "127.0.0.1",
        "metadata": metadata,
        "fees_split": None,
        "authorization": authorization(t.authorization, list_shape=True),
        "customer": customer(t.customer),
        "plan": {},
        "paidAt": t.paid_at,
        "source": {"source": t.source, "type": "api", "identifier": None, "entry_point": "api"},
        "connect": None,
    }


def charged(t: Transaction) -> dict[str, Any]:
    """``POST /transaction/charge_authorization``'s ``data``: metadata is a JSON string."""
    metadata = t.metadata if isinstance(t.metadata, str) else json.dumps(t.metadata)
    return {
        **{k: v for k, v in _common(t).items() if k not in _NOT_IN_CHARGE},
        "transaction_date": t.created_at,
        "metadata": metadata,
        "ip_address": None,
        "authorization": authorization(t.authorization, list_shape=True),
        "customer": customer(t.customer),
        "plan": None,
    }


_NOT_IN_CHARGE = frozenset(
    {
        "paid_at",
        "created_at",
        "createdAt",
        "fees_split",
        "split",
        "subaccount",
        "order_id",
        "requested_amount",
        "pos_transaction_data",
        "source",
        "fees_breakdown",
        "connect",
    }
)


def charge_success_event(t: Transaction) -> dict[str, Any]:
    """The ``charge.success`` webhook body, after Paystack's documented sample."""
    data = verified(t)
    for key in ("receipt_number", "plan_object", "transaction_date", "connect"):
        data.pop(key)
    data["plan"] = {}
    return {"event": "charge.success", "data": data}


def refund_created(merchant: Merchant, r: Refund) -> dict[str, Any]:
    """``POST /refund``'s ``data``."""
    t = r.transaction
    auth = t.authorization
    return {
        "transaction": {
            "id": t.id,
            "domain": DOMAIN,
            "reference": t.reference,
            "amount": t.amount,
            "paid_at": t.paid_at,
            "channel": t.channel,
            "currency": t.currency,
            "authorization": {
                "exp_month": auth.exp_month if auth else None,
                "exp_year": auth.exp_year if auth else None,
                "account_name": None,
            },
            "customer": {"international_format_phone": None},
            "plan": {},
            "subaccount": {"currency": None},
            "split": {},
            "order_id": None,
            "paidAt": t.paid_at,
            "pos_transaction_data": None,
            "source": None,
            "fees_breakdown": None,
        },
        "integration": merchant.integration,
        "deducted_amount": 0,
        "channel": None,
        "merchant_note": r.merchant_note,
        "customer_note": r.customer_note,
        "status": r.status,
        "refunded_by": t.customer.email,
        "expected_at": r.created_at,
        "currency": t.currency,
        "domain": DOMAIN,
        "amount": r.amount,
        "fully_deducted": False,
        "id": r.id,
        "createdAt": r.created_at,
        "updatedAt": r.created_at,
    }


def refund_fetched(merchant: Merchant, r: Refund) -> dict[str, Any]:
    """``GET /refund/{id}``'s ``data``."""
    t = r.transaction
    return {
        "integration": merchant.integration,
        "transaction": t.id,
        "dispute": None,
        "settlement": r.settlement,
        "id": r.id,
        "domain": DOMAIN,
        "currency": t.currency,
        "amount": r.amount,
        "status": r.status,
        "refunded_at": r.refunded_at,
        "refunded_by": t.customer.email,
        "customer_note": r.customer_note,
        "merchant_note": r.merchant_note,
        "deducted_amount": r.amount if r.status == "processed" else 0,
        "fully_deducted": 1 if r.status == "processed" else 0,
        "createdAt": r.created_at,
        "bank_reference": None,
        "transaction_reference": t.reference,
        "reason": r.merchant_note or "Refund requested",
        "customer": {
            "id": t.customer.id,
            "first_name": "",
            "last_name": "",
            "email": t.customer.email,
            "customer_code": t.customer.customer_code,
            "phone": "",
            "metadata": "",
            "risk_action": "default",
            "international_format_phone": "",
        },
        "refund_type": "full" if r.amount == t.amount else "partial",
        "transaction_amount": t.amount,
        "initiated_by": "api",
        "refund_channel": t.channel,
        "session_id": None,
        "collect_account_number": False,
    }


def refund_event(merchant: Merchant, r: Refund) -> dict[str, Any]:
    """``refund.{status}`` after Paystack's samples, which send ``amount`` as a string in
    some events and an integer in others: the fake sends an int only in ``refund.pending``."""
    return {
        "event": f"refund.{r.status}",
        "data": {
            "status": r.status,
            "transaction_reference": r.transaction.reference,
            "refund_reference": None if r.status == "pending" else f"RRN{r.id}",
            "amount": r.amount if r.status == "pending" else str(r.amount),
            "currency": r.transaction.currency,
            "processor": "fake",
            "customer": {"first_name": "", "last_name": "", "email": r.transaction.customer.email},
            "integration": merchant.integration,
            "domain": DOMAIN,
            "id": r.id,
        },
    }


def authorization(auth: Authorization | None, *, list_shape: bool) -> dict[str, Any]:
    if auth is None:
        # Unpaid: verify leaves the object empty; list has every field, null.
        if not list_shape:
            return {}
        keys = (
            "authorization_code",
            "bin",
            "last4",
            "exp_month",
            "exp_year",
            "channel",
            "card_type",
            "bank",
            "country_code",
            "brand",
            "signature",
            "account_name",
        )
        return {**dict.fromkeys(keys), "reusable": False}
    return {
        "authorization_code": auth.code,
        "bin": auth.bin,
        "last4": auth.last4,
        "exp_month": auth.exp_month,
        "exp_year": auth.exp_year,
        "channel": auth.channel,
        "card_type": auth.card_type,
        "bank": auth.bank,
        "country_code": auth.country_code,
        "brand": auth.brand,
        "reusable": auth.reusable,
        "signature": auth.signature,
        "account_name": None,
    }


def customer(c: Customer) -> dict[str, Any]:
    return {
        "id": c.id,
        "first_name": None,
        "last_name": None,
        "email": c.email,
        "customer_code": c.customer_code,
        "phone": None,
        "metadata": None,
        "risk_action": "default",
        "international_format_phone": None,
    }


def _common(t: Transaction) -> dict[str, Any]:
    return {
        "id": t.id,
        "domain": DOMAIN,
        "status": t.status,
        "reference": t.reference,
        "amount": t.amount,
        "message": None,
        "gateway_response": t.gateway_response,
        "paid_at": t.paid_at,
        "created_at": t.created_at,
        "channel": t.channel,
        "currency": t.currency,
        "log": None,
        "fees": None if t.paid_at is None else t.amount * 15 // 1000,
        "split": {},
        "subaccount": {},
        "order_id": None,
        "createdAt": t.created_at,
        "requested_amount": t.amount,
        "pos_transaction_data": None,
        "source": None,
        "fees_breakdown": None,
    }


def _decoded(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
