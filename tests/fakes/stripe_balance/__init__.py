"""A small fake of Stripe's balance: balance transactions and payouts, which localstripe
lacks, in front of localstripe (every other request passes through to it). Its objects have
exactly the fields and types of Stripe's own fixtures (``stripe-fixtures3.yaml``:
``balance_transaction``, ``payout``), which tests/connectors/test_stripe_balance_fake.py
checks. Each secret key has its own balance, so tests with their own key never meet.

Stripe's API (``Authorization: Bearer sk_test_...``):

- ``GET /v1/payouts`` (limit, starting_after, created[gte]), ``GET /v1/payouts/{id}``.
- ``GET /v1/balance_transactions`` (payout, limit, starting_after, ``expand[]=data.source``:
  the charge, refund or payout as localstripe has it), ``GET /v1/balance_transactions/{id}``.
  A payout's list holds its own ``payout`` transaction, as Stripe's does.
  Also filtered by ``type``, ``source``, ``currency`` and ``created[gt|gte|lt|lte]``.
- ``GET /v1/payment_intents`` and ``GET /v1/refunds`` (``lists.py``): only the objects this
  key created (localstripe shares one store), newest first, ``created`` filters,
  ``limit``/``starting_after``; unknown parameters are a 400. Retrieves pass through.

Controls (the same Bearer key, JSON bodies):

- ``POST /_fake/payouts`` ``{payment_intents, refunds, status=paid, net_delta=0}``: pay out
  these PaymentIntents' charges (fee 2.9 % + 30 unless injected) and these refunds (fee 0),
  plus injected unknown charges and dashboard refunds; a source is paid out once. A non-zero
  ``net_delta`` breaks ``gross - fee = net`` on one transaction (nonsense to refuse).
- ``POST /_fake/payouts/{id}/status`` ``{status}``: move a payout on (``paid``, ``failed`` ...).
- ``POST /_fake/holds`` ``{path}``: hold this key's next POST to ``path`` before it reaches
  localstripe (a slow provider call; what it creates exists only once released), until
  ``POST /_fake/holds/release`` ``{path}`` (or 60 s); ``POST /_fake/holds/arrived``
  ``{path}`` answers ``{arrived}`` once it is held (waiting up to 10 s).
- ``POST /_fake/discrepancies/fee`` ``{payment_intent, fee}``: its charge's fee at payout
  (after its payout: its balance transaction's fee changes, as a fee adjustment shows).
- ``POST /_fake/discrepancies/missing_charge`` ``{payment_intent}``: localstripe's answers
  about it (and its charge) become 404s, and lists omit it.
- ``POST /_fake/discrepancies/unknown_charge`` ``{amount, currency=usd}``: a charge made at
  Stripe, not through paygrid; paid out with the next payout.
- ``POST /_fake/discrepancies/amount`` ``{payment_intent, amount}``: Stripe reports this amount.
- ``POST /_fake/discrepancies/status`` ``{payment_intent, status}``: and this status.
- ``POST /_fake/discrepancies/dashboard_refund`` ``{payment_intent, amount?}``: a refund made
  in Stripe's dashboard (paygrid never sees it); paid out with the next payout.
"""

from tests.fakes.stripe_balance.server import FakeServer, StripeFake, StripeFakeAccount

__all__ = ["FakeServer", "StripeFake", "StripeFakeAccount"]
