"""The Paystack connector: ``connector`` does HTTP, ``mapping`` translates (pure),
``webhooks`` checks signatures (pure)."""

from __future__ import annotations

from paygrid.connectors.base import AccountConfig
from paygrid.connectors.paystack.connector import PaystackConnector


def build(config: AccountConfig) -> PaystackConnector:
    """A connector for one Paystack account (``config.api_base`` points tests at a fake)."""
    return PaystackConnector(config)


__all__ = ["PaystackConnector", "build"]
