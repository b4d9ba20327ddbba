"""A stateful fake of Paystack's API for tests, modelled on Paystack's OpenAPI spec and its
documented webhook samples (``tests/connectors/test_paystack_fake.py`` keeps it honest).

Run it with ``FakeServer`` (uvicorn on 127.0.0.1 and a free port, in a background thread) or
through the ``paystack_fake`` / ``paystack_merchant`` fixtures of ``tests/fakes/plugin.py``.

Paystack's API (``Authorization: Bearer sk_test_...`` of a merchant created below; anything
else is 401). Every answer is ``{status, message, data}``; errors ``{status: false, message,
type?, code?}``.

- ``POST /transaction/initialize``: email*, amount* (subunits, int or digit string), currency
  (NGN GHS ZAR KES USD), reference (a repeat is 400 "Duplicate Transaction Reference"),
  channels[], callback_url, metadata. ``authorization_url`` is the fake's checkout page.
- ``GET /transaction/verify/{reference}`` (404 "Transaction reference not found"),
  ``GET /transaction`` (perPage, page, status; ``meta`` pagination).
- ``POST /transaction/charge_authorization``: email*, amount*, authorization_code*, reference,
  currency, metadata (a JSON string, as in the spec).
- ``POST /refund``: transaction* (reference or id), amount (default: what is left), currency,
  merchant_note, customer_note (kept, and answered by ``GET /refund/{id}`` and ``GET
  /refund``). Refunds start ``pending``; ``GET /refund/{id}``.

Hosted checkout: ``GET /checkout/{access_code}`` is a plain HTML form; POST it form-encoded with
``channel=card&card_number=...&exp_month=MM&exp_year=YYYY`` or ``channel=<bank|ussd|qr|...>``.
Card 4084084084084081 pays; 5061020283705678 fails "Insufficient Funds"; an expiry in the past
fails "Expired Card"; any other number fails "Declined", except the decline-later cards
(``state.DECLINE_LATER_CARDS``: 4000000000000341, ...9979, ...9987, ...9995, ...0069), which
pay and whose authorization's later charges fail "Declined", "Stolen Card, Pick-Up", "Lost
Card, Pick-Up", "Insufficient Funds" and "Expired Card". A payment marks the transaction
``success`` with a reusable ``AUTH_...`` authorization (cards only), sends ``charge.success``
and redirects (302) to ``callback_url?trxref=REF&reference=REF``. A failure marks it ``failed``
and answers 402 with an HTML page; no webhook.

Webhooks: each event is JSON, signed with ``x-paystack-signature`` = hex HMAC-SHA512 of the
raw body keyed with the merchant's secret key, recorded, and POSTed (just after the response)
to the merchant's webhook URL when one is set. ``refund.pending`` carries ``amount`` as an
integer; ``refund.processed``/``refund.failed`` as a string, as Paystack's samples vary.
A full refund, once processed, turns the transaction ``reversed``.

Controls (``/_fake/...``; all but ``merchants`` and ``sink`` take the merchant's Bearer key):

- ``POST /_fake/merchants`` ``{secret_key?, auto_process_refunds?}`` -> ``{secret_key,
  integration}``: a new merchant, i.e. a separate namespace for one test.
- ``PUT /_fake/webhook_url`` ``{url}``: where to POST events (null: record only).
- ``POST /_fake/refunds/process`` ``{status: processed|processing|failed}``: settle every
  pending refund, sending ``refund.<status>``. With ``auto_process_refunds`` refunds are
  processed right after ``POST /refund`` instead.
- ``POST /_fake/faults`` ``{mode, count=1, path?, hang_seconds=2}``: the next ``count`` API
  requests whose path starts with ``path`` fail. ``timeout_after``: the change is applied, then
  the answer waits ``hang_seconds`` (past a client timeout). ``timeout_before``: waits, then 503
  with nothing applied. ``error_500_after``: applied, then 500. ``error_503``: refused at once,
  nothing applied. (Refused connections: point the client at ``closed_port_url()``.)
- ``POST /_fake/authorizations/{code}/decline`` ``{gateway_response}``: later charges of this
  authorization fail with that text.
- ``GET /_fake/webhooks``: every event recorded (raw body, signature, url, status_code);
  ``POST /_fake/webhooks/{id}/resend`` sends one again.
- ``GET /_fake/state``: transactions, refunds and authorizations with their statuses.
- Settlements (``GET /settlement``, ``GET /settlement/{id}/transactions``), ``POST
  /_fake/settlements`` and the discrepancy controls ``POST /_fake/discrepancies/<kind>``
  (fee, missing_charge, unknown_charge, amount, status, dashboard_refund): see
  ``tests/fakes/paystack/settlements.py``.
- ``POST|GET /_fake/sink/{name}``: a receiver that records the requests POSTed to it.
"""

from tests.fakes.paystack.server import (
    FakeMerchant,
    FakeServer,
    PaystackFake,
    WebhookDelivery,
    closed_port_url,
)

__all__ = ["FakeMerchant", "FakeServer", "PaystackFake", "WebhookDelivery", "closed_port_url"]
