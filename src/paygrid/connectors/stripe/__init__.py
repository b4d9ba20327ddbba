"""Stripe: PaymentIntents through the official SDK (``connector``), pure translation
(``mapping``) and signed inbound webhooks (``webhooks``)."""

from __future__ import annotations

from paygrid.connectors.base import AccountConfig
from paygrid.connectors.stripe.connector import StripeConnector


def build(config: AccountConfig) -> StripeConnector:
    """A connector for one Stripe account. An ``api_base`` (test mode only) is taken to be
    localstripe, the only local Stripe fake paygrid supports, and its quirks are honoured."""
    if config.api_base is not None and config.livemode:
        raise ValueError("a live Stripe account cannot point at a local fake")
    return StripeConnector(config, localstripe=config.api_base is not None)


__all__ = ["StripeConnector", "build"]
