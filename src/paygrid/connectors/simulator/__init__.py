"""The built-in test-mode provider: a real component with its own tables (schema
``simulator``), a card tokenizer, test cards and a hosted 3-D Secure page."""

from __future__ import annotations

from paygrid.connectors.base import ProviderFacts
from paygrid.connectors.simulator.connector import SimulatorConnector
from paygrid.money import CURRENCIES

FACTS = ProviderFacts(
    name=SimulatorConnector.name,
    display_name="Simulator",
    capabilities=SimulatorConnector.capabilities,
    currencies=frozenset(CURRENCIES),
    build=None,  # the registry holds the built-in instance and builds per-account ones
    credentials_required=False,
    default_rank=2,
    test_mode_only="The simulator moves no real money, so it is available in test mode only.",
)

__all__ = ["FACTS", "SimulatorConnector"]
