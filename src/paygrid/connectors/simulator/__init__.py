"""The built-in test-mode provider: a real component with its own tables (schema
``simulator``), a card tokenizer, test cards and a hosted 3-D Secure page."""

from paygrid.connectors.simulator.connector import SimulatorConnector

__all__ = ["SimulatorConnector"]
