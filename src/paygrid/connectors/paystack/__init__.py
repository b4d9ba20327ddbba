"""The Paystack connector: ``connector`` does HTTP, ``mapping`` translates (pure),
``webhooks`` checks signatures (pure)."""

from __future__ import annotations

from paygrid.connectors.base import AccountConfig, ProviderFacts
from paygrid.connectors.paystack import webhooks
from paygrid.connectors.paystack.connector import PaystackConnector


def build(config: AccountConfig) -> PaystackConnector:
    """A connector for one Paystack account (``config.api_base`` points tests at a fake)."""
    return PaystackConnector(config)


FACTS = ProviderFacts(
    name=PaystackConnector.name,
    display_name="Paystack",
    capabilities=PaystackConnector.capabilities,
    currencies=frozenset({"NGN", "GHS", "ZAR", "KES", "USD"}),  # Paystack's published list
    build=build,
    test_key_prefixes=("sk_test_",),
    live_key_prefixes=("sk_live_",),
    webhook_key_refusal="Paystack signs webhooks with the secret key; leave webhook_secret out.",
    signature_headers=frozenset({webhooks.SIGNATURE_HEADER}),
    requires_email=True,  # transaction/initialize and charge_authorization need one
    preferred_currencies=frozenset({"NGN", "GHS", "KES", "ZAR"}),
    default_rank=1,
)

__all__ = ["FACTS", "PaystackConnector", "build"]
