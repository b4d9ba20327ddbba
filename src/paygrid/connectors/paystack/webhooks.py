"""Paystack webhook signatures: ``x-paystack-signature`` is the lowercase hex HMAC-SHA512 of
the raw body keyed with the account's secret key. Pure; no timestamp exists to check."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from paygrid.connectors.base import InvalidSignature

SIGNATURE_HEADER = "x-paystack-signature"


def sign(raw_body: bytes, secret_key: str) -> str:
    """The signature Paystack sends for ``raw_body``."""
    return hmac.new(secret_key.encode(), raw_body, hashlib.sha512).hexdigest()


def verify(raw_body: bytes, headers: Mapping[str, str], secret_key: str) -> None:
    """Raise ``InvalidSignature`` unless the header matches, compared in constant time."""
    received = _header(headers, SIGNATURE_HEADER)
    if not received:
        raise InvalidSignature("the x-paystack-signature header is missing")
    if not hmac.compare_digest(
        received.strip().lower().encode(), sign(raw_body, secret_key).encode()
    ):
        raise InvalidSignature("the x-paystack-signature header does not match the body")


def verified_payload(
    raw_body: bytes, headers: Mapping[str, str], secret_key: str
) -> Mapping[str, Any]:
    """Verify, then parse: the body is only read once it is known to come from Paystack."""
    verify(raw_body, headers, secret_key)
    try:
        payload = json.loads(raw_body)
    except ValueError:
        raise InvalidSignature("a signed Paystack webhook whose body is not JSON") from None
    if not isinstance(payload, Mapping):
        raise InvalidSignature("a signed Paystack webhook whose body is not an object")
    return payload


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    # A plain dict may carry any capitalisation; HTTP header names are case-insensitive.
    return next((v for k, v in headers.items() if k.lower() == name), None)
