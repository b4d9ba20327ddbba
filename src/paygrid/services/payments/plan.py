"""The plan of a payment: routing's ordered targets, asked for once, and the choice of the
next target from them. The first authorization, a failover and a hosted page reopened after
its address was lost all take their target from a plan."""

from __future__ import annotations

from dataclasses import dataclass, replace

from paygrid.db.payments import PaymentRow
from paygrid.dependencies import Deps
from paygrid.domain.payments import CaptureMethod
from paygrid.domain.routing import RoutingContext
from paygrid.services import routing
from paygrid.services.context import Tenant
from paygrid.services.payment_method_sources import MethodSource, SavedMethod
from paygrid.services.payments.choice import Choice, choose


@dataclass(frozen=True, slots=True)
class Plan:
    """Where a payment may still go, in order, and what choosing among them needs."""

    tenant: Tenant
    targets: tuple[routing.Target, ...]
    source: MethodSource
    manual_capture: bool
    email: str | None

    @property
    def exhausted(self) -> bool:
        return not self.targets

    async def next(self, deps: Deps) -> tuple[Choice, Plan]:
        """The first remaining target that can take the payment (raw card data is tokenized
        there), and the plan after it."""
        choice = await choose(
            deps,
            self.tenant,
            list(self.targets),
            self.source,
            manual_capture=self.manual_capture,
            now=deps.clock.now(),
            email=self.email,
        )
        rest = self.targets[self.targets.index(choice.target) + 1 :]
        return choice, replace(self, targets=rest)


async def plan_for(deps: Deps, tenant: Tenant, payment: PaymentRow, source: MethodSource) -> Plan:
    """Ask routing, once, where ``payment`` paid with ``source`` may go."""
    targets = await routing.targets_for(
        deps.pool,
        tenant,
        _routing_context(payment, source),
        deps.connectors.providers,
        deps.lookups,
    )
    return _plan(tenant, tuple(targets), source, payment)


def pinned(tenant: Tenant, target: routing.Target, payment: PaymentRow) -> Plan:
    """A plan of one known target, for a payment without a payment method (a hosted page
    reopened where the lost one was)."""
    return _plan(tenant, (target,), None, payment)


def _plan(
    tenant: Tenant,
    targets: tuple[routing.Target, ...],
    source: MethodSource,
    payment: PaymentRow,
) -> Plan:
    manual = payment.capture_method is CaptureMethod.MANUAL
    return Plan(tenant, targets, source, manual, payment.receipt_email)


def _routing_context(payment: PaymentRow, source: MethodSource) -> RoutingContext:
    country = source.row.card_country if isinstance(source, SavedMethod) else None
    return RoutingContext(
        payment_id=payment.id,
        currency=payment.currency,
        amount=payment.amount,
        payment_method_type="card" if source is not None else payment.payment_method_types[0],
        card_country=country,
        metadata=payment.metadata,
    )
