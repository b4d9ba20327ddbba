"""The built-in simulator's hosted 3-D Secure page: what it shows, and the customer's
decision. The simulator keeps its charges in its own tables; only it reads them."""

from __future__ import annotations

from paygrid.connectors.simulator.connector import Challenge
from paygrid.dependencies import Deps
from paygrid.domain.errors import ResourceMissing


async def challenge(deps: Deps, charge_id: str) -> Challenge:
    found = await deps.connectors.simulator.challenge(charge_id)
    if found is None:
        raise ResourceMissing("No such authentication.")
    return found


async def decide(deps: Deps, charge_id: str, *, approved: bool) -> str:
    """Approve or refuse the challenge; returns where to send the customer next."""
    target = await deps.connectors.simulator.authenticate(charge_id, approved=approved)
    if target is None:
        raise ResourceMissing("No such authentication.")
    return target
