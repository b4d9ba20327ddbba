"""Thirdpay: a provider that exists only in the tests, to prove a provider is one package
plus one entry in the registry's list. Its facts differ from every built-in provider's
(key prefixes, currencies, a preferred currency, a signature header), so a service that
still read a built-in provider's facts would be caught."""

from __future__ import annotations

from paygrid.connectors.base import AccountConfig, ProviderFacts
from tests.fakes.thirdpay.connector import NAME, SIGNATURE_HEADER, ThirdpayConnector


def build(config: AccountConfig) -> ThirdpayConnector:
    return ThirdpayConnector(config)


FACTS = ProviderFacts(
    name=NAME,
    display_name="Thirdpay",
    capabilities=ThirdpayConnector.capabilities,
    currencies=frozenset({"EUR", "GBP"}),
    build=build,
    test_key_prefixes=("tp_test_",),
    live_key_prefixes=("tp_live_",),
    signature_headers=frozenset({SIGNATURE_HEADER}),
    preferred_currencies=frozenset({"EUR"}),
    default_rank=50,
)

__all__ = ["FACTS", "ThirdpayConnector", "build"]
