"""``/v1/test_helpers``: test-mode helpers. ``payment_methods/{id}/outcomes`` scripts how a
saved method's next charges end at the simulator."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from paygrid.api.authentication import secret_key
from paygrid.api.dependencies import deps_of
from paygrid.api.responses import COMMON_ERRORS, json_response
from paygrid.schemas.scripted_outcomes import OutcomesScript, ScriptedOutcomes
from paygrid.services import scripted_outcomes
from paygrid.services.context import Tenant

router = APIRouter(prefix="/v1/test_helpers", tags=["Payment methods"], responses=COMMON_ERRORS)
SecretTenant = Annotated[Tenant, Depends(secret_key)]


@router.post(
    "/payment_methods/{pm_id}/outcomes",
    response_model=ScriptedOutcomes,
    summary="Script a saved method's next charges (test mode)",
)
async def script_outcomes(
    request: Request, pm_id: str, body: OutcomesScript, tenant: SecretTenant
) -> Response:
    """Each charge of the method at the simulator takes the first scripted outcome, once
    (concurrent charges never take the same one); when none is left, the card behaves as
    its number says. Test mode only (a live key: 400 `test_mode_only`); a method of another
    merchant or mode: 404."""
    return json_response(
        await scripted_outcomes.script_outcomes(deps_of(request), tenant, pm_id, body)
    )
