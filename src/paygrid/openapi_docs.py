"""Prose for the OpenAPI document served at /openapi.json and /docs."""

from __future__ import annotations

from typing import Any, Final

API_DESCRIPTION: Final = """
paygrid is a self-hosted payment gateway. One HTTP API in front of several providers.

**Authentication.** Send `Authorization: Bearer <key>`. Test keys (`sk_test_...`) see and
create only test-mode objects, processed by the built-in simulator; live keys (`sk_live_...`)
only live ones. Publishable keys (`pk_...`) may only tokenize payment methods.
Missing, malformed or revoked key: 401. Wrong kind of key: 403. Another merchant's object, or
the other mode's: 404.

**Amounts** are integers in the currency's minor unit (cents, kobo; yen have none).

**Idempotency.** Every POST accepts `Idempotency-Key` (at most 255 characters), scoped to your
merchant and mode and kept 24 hours. A retry returns the first response again with
`Idempotent-Replayed: true`. The same key with a different path or body: 422
`idempotency_key_reused`. The same key while the first request still runs: 409
`idempotency_key_in_use`.

**Errors** always have the body
`{"error": {"type", "code", "message", "param", "request_id", "doc_url"}}`; card declines
add `decline_code` and `payment_id`. `doc_url` is the code's entry in the
[integration guide](/docs/api#errors) that this server serves. Types: `invalid_request_error`, `authentication_error`,
`permission_error`, `card_error`, `idempotency_error`, `api_error`.

**Lists** are newest first: `limit` (1-100), `starting_after`, `ending_before`, and the
envelope `{"object": "list", "data": [...], "has_more": bool}`.

Every response carries `X-Request-Id` (an incoming one is echoed).
"""

TAGS: Final[list[dict[str, Any]]] = [
    {
        "name": "Payments",
        "description": "Payments follow Stripe's PaymentIntent states: "
        "requires_payment_method, requires_confirmation, requires_action, processing, "
        "requires_capture, succeeded, canceled.",
    },
    {
        "name": "Checkout sessions",
        "description": "Hosted payment pages (`cs_...`): create one, send the customer to "
        "its `url` (or open it with `/js/checkout.js`), fulfil on "
        "`checkout_session.completed`. See docs/checkout.md.",
    },
    {"name": "Refunds", "description": "Full or partial refunds of succeeded payments."},
    {"name": "Customers", "description": "People who pay you."},
    {"name": "Payment methods", "description": "Tokenized cards (`pm_...`)."},
    {
        "name": "Webhooks",
        "description": "Endpoints that receive events, signed per Standard Webhooks "
        "(`webhook-id`, `webhook-timestamp`, `webhook-signature`).",
    },
    {
        "name": "Events",
        "description": "What changed (`evt_...`): each event is written in the same "
        "transaction as its change and holds a snapshot of the object at that moment.",
    },
    {
        "name": "Admin",
        "description": "Queue administration; needs a secret key with the `admin` scope.",
    },
    {"name": "Health", "description": "Liveness and readiness probes."},
]


def optional_empty_bodies(spec: dict[str, Any]) -> dict[str, Any]:
    """Mark a request body optional when none of its fields is required: an empty POST is
    read as ``{}`` (BodyGuard), so leaving such a body out is a valid request."""
    components = spec.get("components", {}).get("schemas", {})
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            body = operation.get("requestBody")
            if body is None:
                continue
            ref = body["content"].get("application/json", {}).get("schema", {}).get("$ref", "")
            model = components.get(ref.rpartition("/")[2])
            if model is not None and not model.get("required"):
                body["required"] = False
    return spec
