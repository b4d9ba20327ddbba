"""Stripe: PaymentIntents through the official SDK (``connector``), pure translation
(``mapping``) and signed inbound webhooks (``webhooks``)."""

from __future__ import annotations

from paygrid.connectors.base import AccountConfig, ProviderFacts
from paygrid.connectors.stripe import mapping, webhooks
from paygrid.connectors.stripe.connector import StripeConnector
from paygrid.money import CURRENCIES


def build(config: AccountConfig) -> StripeConnector:
    """A connector for one Stripe account. An ``api_base`` (test mode only) is taken to be
    localstripe, the only local Stripe fake paygrid supports, and its quirks are honoured."""
    if config.api_base is not None and config.livemode:
        raise ValueError("a live Stripe account cannot point at a local fake")
    return StripeConnector(config, localstripe=config.api_base is not None)


FACTS = ProviderFacts(
    name=StripeConnector.name,
    display_name="Stripe",
    capabilities=StripeConnector.capabilities,
    currencies=frozenset(CURRENCIES),  # every currency in paygrid's registry
    build=build,
    test_key_prefixes=("sk_test_", "rk_test_"),  # secret or restricted keys
    live_key_prefixes=("sk_live_", "rk_live_"),
    webhook_key_prefix="whsec_",
    signature_headers=frozenset({webhooks.SIGNATURE_HEADER}),
    default_rank=0,  # first, unless another provider prefers the currency
    amount_refusal=mapping.amount_refusal,
)

__all__ = ["FACTS", "StripeConnector", "build"]
