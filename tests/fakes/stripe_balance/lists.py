"""Stripe's list semantics for the objects localstripe keeps (PaymentIntents, refunds), which
it lacks: localstripe rejects ``created`` filters and shares one store across every API key.
The fake records which secret key created each object (as it passes through), and answers
``GET /v1/payment_intents`` and ``GET /v1/refunds`` itself: only that key's objects, newest
first, filtered by ``created[gt|gte|lt|lte]`` (or ``created=N``), paginated with ``limit``
and ``starting_after``, with the injected discrepancies applied. Unknown parameters are a
400, as Stripe's are."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from starlette.datastructures import QueryParams

Json = dict[str, Any]

CREATED_FILTERS = ("created[gt]", "created[gte]", "created[lt]", "created[lte]", "created")
COMMON = frozenset({"limit", "starting_after", "ending_before", *CREATED_FILTERS})
FILTERS: dict[str, frozenset[str]] = {
    "payment_intent": COMMON | {"customer"},
    "refund": COMMON | {"payment_intent", "charge"},
    "balance_transaction": COMMON | {"payout", "type", "source", "currency"},
}


def unknown_parameters(kind: str, query: QueryParams) -> list[str]:
    """Query parameters Stripe's list of ``kind`` does not take."""
    return sorted({k for k in query if k not in FILTERS[kind] and not _is_expand(k)})


def created_matches(query: QueryParams, created: int) -> bool:
    """Whether ``created`` passes the ``created`` filters of the query."""
    checks: dict[str, Callable[[int, int], bool]] = {
        "created[gt]": operator.gt,
        "created[gte]": operator.ge,
        "created[lt]": operator.lt,
        "created[lte]": operator.le,
        "created": operator.eq,
    }
    return all(check(created, int(query[name])) for name, check in checks.items() if name in query)


def invalid_created(query: QueryParams) -> str | None:
    """The first ``created`` filter that is not an integer, if any."""
    for name in CREATED_FILTERS:
        value = query.get(name)
        if value is not None and not value.lstrip("-").isdigit():
            return name
    return None


def field_matches(query: QueryParams, obj: Json, names: tuple[str, ...]) -> bool:
    """Equality filters (``payment_intent``, ``type`` ...) on the object's own fields."""
    for name in names:
        wanted = query.get(name)
        if wanted is None:
            continue
        value = obj.get(name)
        if isinstance(value, dict):
            value = value.get("id")
        if value != wanted:
            return False
    return True


def expansions(query: QueryParams) -> list[str]:
    """A list's ``expand[]=data.X`` as the retrieve's ``expand[]=X``."""
    return [
        v.removeprefix("data.")
        for k, v in query.multi_items()
        if _is_expand(k) and v.startswith("data.")
    ]


def _is_expand(name: str) -> bool:
    """``expand[]`` or, as the official SDKs send it, ``expand[0]``."""
    return name.startswith("expand[") and name.endswith("]")
