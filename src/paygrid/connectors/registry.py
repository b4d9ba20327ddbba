"""Which connector serves a tenant. Test mode always uses the simulator; live mode uses the
merchant's configured provider accounts (none exist until provider connectors land)."""

from __future__ import annotations

from paygrid.connectors.base import Connector
from paygrid.connectors.simulator import SimulatorConnector
from paygrid.domain.errors import InvalidRequest


class ConnectorRegistry:
    def __init__(self, simulator: SimulatorConnector) -> None:
        self.simulator = simulator
        self._by_name: dict[str, Connector] = {simulator.name: simulator}

    def for_mode(self, livemode: bool) -> Connector:
        """The connector that processes new payments in this mode."""
        if not livemode:
            return self.simulator
        raise InvalidRequest(
            "No live connector account is configured for this merchant, so live payments "
            "cannot be processed yet.",
            code="no_connector_available",
        )

    def by_name(self, name: str) -> Connector:
        connector = self._by_name.get(name)
        if connector is None:
            raise LookupError(f"connector {name!r} is not registered")
        return connector

    def tokenizer(self, livemode: bool) -> SimulatorConnector:
        """Raw card data is accepted only in test mode, by the simulator's tokenizer."""
        if livemode:
            raise InvalidRequest(
                "Raw card data is accepted only in test mode. In live mode, collect cards "
                "with your provider's hosted fields.",
                param="payment_method_data",
                code="card_data_not_allowed",
            )
        return self.simulator
