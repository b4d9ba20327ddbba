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
        "name": "Setup intents",
        "description": "Save a customer's card for later off-session charges without "
        "charging it (`seti_...`), and the mandates that record the customer's acceptance.",
    },
    {
        "name": "Test clocks",
        "description": "Test mode only: clocks (`clock_...`) whose customers, and everything "
        "billed to them, run on the clock's frozen time until you advance it.",
    },
    {
        "name": "Products",
        "description": "What you sell (`prod_...`), priced by prices. See docs/billing.md.",
    },
    {
        "name": "Prices",
        "description": "A product's unit amount in one currency (`price_...`), one-time or "
        "recurring; immutable apart from `active`, `nickname`, `lookup_key` and metadata.",
    },
    {
        "name": "Invoices",
        "description": "Invoices (`in_...`) collect a customer's pending invoice items "
        "(`ii_...`): draft, open, paid, void or uncollectible, numbered `{prefix}-{0001}` "
        "at finalization. See docs/billing.md.",
    },
    {
        "name": "Billing settings",
        "description": "Per merchant and mode: dunning (the retry schedule and what follows "
        "it), invoice numbering, due days, footer and finalize delay, the customer portal "
        "and emails. See docs/billing.md.",
    },
    {
        "name": "Account",
        "description": "The merchant the key belongs to (`GET`/`POST /v1/account`), with its "
        "time zone. See docs/api.md#account.",
    },
    {
        "name": "Customer billing portal",
        "description": "A short-lived link (`bps_...`) to a customer's own billing page: "
        "subscriptions, invoices and saved cards. See docs/billing.md.",
    },
    {
        "name": "Payment links",
        "description": "Shareable pages (`plink_...`, `url` `/l/{slug}`) that sell prices: "
        "one-time prices take a payment, recurring ones make a subscription; an optional "
        "completion limit holds under concurrency. See docs/billing.md.",
    },
    {
        "name": "Reconciliation",
        "description": "Runs (`recon_...`) that compare a connector account's charges and "
        "refunds with the provider's for a window, and the typed discrepancies (`rdis_...`) "
        "they find; `heal` fixes only status drift and provider-side refunds. See "
        "docs/reconciliation.md.",
    },
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
    read as ``{}`` (the body guard, ``api.middleware.read_body``), so leaving such a body
    out is a valid request."""
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


# What the server refuses in text (``schemas.common.unstorable`` for parameters and bodies,
# the middleware's check for the path), as JSON Schema patterns: the document says so, so a
# client (or a fuzzer) generating from it sends nothing the server answers with a 400.
_STORABLE_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
_PATH_TEXT = r"^[^\x00-\x1f\x7f]*$"


def storable_text(spec: dict[str, Any]) -> dict[str, Any]:
    """Give every free-text string of a request (path and query parameters, request bodies
    and the object keys in them) the pattern of the text the server stores."""
    components = spec.get("components", {}).get("schemas", {})
    seen: set[str] = set()
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                pattern = _PATH_TEXT if parameter.get("in") == "path" else _STORABLE_TEXT
                _restrict_text(parameter.get("schema", {}), pattern, components, seen)
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None:
                _restrict_text(body.get("schema", {}), _STORABLE_TEXT, components, seen)
    return spec


def _restrict_text(
    schema: dict[str, Any], pattern: str, components: dict[str, Any], seen: set[str]
) -> None:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rpartition("/")[2]
        if name not in seen and name in components:
            seen.add(name)
            _restrict_text(components[name], pattern, components, seen)
        return
    # A string already held to an enum, a pattern or a format holds no control characters;
    # that also covers the string branch of an optional field (``anyOf: [string, null]``).
    constrained = bool({"enum", "const", "pattern", "format"} & set(schema))
    if schema.get("type") == "string" and not constrained:
        schema["pattern"] = pattern
    if isinstance(schema.get("additionalProperties"), dict):
        schema.setdefault("propertyNames", {}).setdefault("pattern", pattern)
    children: list[Any] = list(schema.get("properties", {}).values())
    if not constrained:
        children.extend(schema.get(key, []) for key in ("anyOf", "oneOf", "allOf"))
    for key in ("items", "additionalProperties", "propertyNames", "not", "if", "then", "else"):
        children.append(schema.get(key))
    for child in children:
        if isinstance(child, list):
            for item in child:
                _restrict_text(item, pattern, components, seen)
        elif isinstance(child, dict):
            _restrict_text(child, pattern, components, seen)
