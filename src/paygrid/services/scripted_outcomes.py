"""``POST /v1/test_helpers/payment_methods/{id}/outcomes``: script how a saved method's next
charges end at the test-mode simulator (issue 14 §2). The script is kept by the simulator in
its own tables, so the worker's charges take what the API scripted."""

from __future__ import annotations

from paygrid.db import payment_methods as payment_methods_db
from paygrid.dependencies import Deps
from paygrid.domain.errors import ResourceMissing
from paygrid.domain.scripted_outcomes import ScriptNotSupported, TestHelpersTestModeOnly
from paygrid.schemas.scripted_outcomes import OutcomesScript, ScriptedOutcomes
from paygrid.services.context import Tenant

SIMULATOR = "simulator"


async def script_outcomes(
    deps: Deps, tenant: Tenant, pm_id: str, params: OutcomesScript
) -> ScriptedOutcomes:
    """Append ``params.outcomes`` to the method's script. A live key: 400
    ``test_mode_only``; another merchant's or mode's method: 404; a method not saved at the
    simulator: 400 ``scripted_outcomes_unsupported``."""
    if tenant.livemode:
        raise TestHelpersTestModeOnly(
            "Scripted outcomes exist in test mode only; use a test-mode key (sk_test_...)."
        )
    method = await payment_methods_db.get_payment_method(
        deps.pool, tenant.merchant_id, tenant.livemode, pm_id
    )
    if method is None or method.detached_at is not None:
        raise ResourceMissing(f"No such payment_method: '{pm_id}'", param="id")
    if method.connector != SIMULATOR:
        raise ScriptNotSupported(
            f"Scripted outcomes exist only for methods of the simulator; {pm_id} belongs "
            f"to {method.connector}.",
            param="id",
        )
    simulator = deps.connectors.simulator
    await simulator.script_outcomes(
        method.connector_reference,
        list(params.outcomes),
        merchant_id=tenant.merchant_id,
        payment_method_id=method.id,
    )
    remaining = await simulator.scripted_outcomes(method.connector_reference)
    return ScriptedOutcomes(payment_method=method.id, outcomes=remaining)
