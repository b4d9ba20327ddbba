"""The tenant every use case acts for. The dependencies it receives, ``Deps``, are chosen at
start-up: see ``paygrid.dependencies`` and ``paygrid.bootstrap``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Tenant:
    """A merchant acting in one mode. Every query is scoped by both."""

    merchant_id: str
    livemode: bool
