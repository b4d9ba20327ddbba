"""Each provider's facts come from its own package, through one interface the registry
collects; the API's documented provider list is the registry's."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from paygrid.connectors import paystack, simulator, stripe
from paygrid.connectors.base import ProviderFacts
from paygrid.connectors.registry import BUILTIN_PROVIDERS, ProviderCatalog
from paygrid.schemas.connector_accounts import BUILTIN_PROVIDER_NAMES


def test_the_documented_providers_are_the_registrys() -> None:
    assert list(BUILTIN_PROVIDER_NAMES) == BUILTIN_PROVIDERS.names()


@pytest.mark.parametrize(
    ("facts", "connector"),
    [
        (stripe.FACTS, stripe.StripeConnector),
        (paystack.FACTS, paystack.PaystackConnector),
        (simulator.FACTS, simulator.SimulatorConnector),
    ],
)
def test_facts_describe_the_packages_own_connector(facts: ProviderFacts, connector: Any) -> None:
    assert BUILTIN_PROVIDERS.facts(facts.name) is facts
    assert (facts.name, facts.capabilities) == (connector.name, connector.capabilities)


def test_an_unknown_provider_is_a_lookup_error() -> None:
    with pytest.raises(LookupError, match="adyen"):
        BUILTIN_PROVIDERS.facts("adyen")
    assert "adyen" not in BUILTIN_PROVIDERS


def test_a_list_needs_unique_names_and_the_built_in_simulator() -> None:
    twice = dataclasses.replace(stripe.FACTS, display_name="Stripe again")
    with pytest.raises(ValueError, match="share a name"):
        ProviderCatalog((stripe.FACTS, twice, simulator.FACTS))
    with pytest.raises(ValueError, match="simulator"):
        ProviderCatalog((stripe.FACTS, paystack.FACTS))
