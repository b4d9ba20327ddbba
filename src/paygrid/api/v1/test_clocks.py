"""``/v1/test_clocks``: create, retrieve, list, delete and advance test clocks (test mode)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from paygrid.api.authentication import secret_key
from paygrid.api.dependencies import deps_of
from paygrid.api.responses import COMMON_ERRORS, Page, json_response, list_response
from paygrid.schemas.common import DeletedObject, ListObject
from paygrid.schemas.test_clocks import TestClock, TestClockAdvance, TestClockCreate
from paygrid.services.billing import test_clocks
from paygrid.services.context import Tenant

_STATE_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {
        **COMMON_ERRORS[409],
        "description": "The clock is advancing (`test_clock_advancing`) or failed "
        "(`test_clock_internal_failure`); `current_status` names its status.",
    }
}

router = APIRouter(prefix="/v1/test_clocks", tags=["Test clocks"], responses=COMMON_ERRORS)
SecretTenant = Annotated[Tenant, Depends(secret_key)]


@router.post("", response_model=TestClock, summary="Create a test clock")
async def create_clock(request: Request, body: TestClockCreate, tenant: SecretTenant) -> Response:
    """Test mode only (a live key: 400 `test_mode_only`). The clock is `ready` at
    `frozen_time`; create customers on it with `test_clock`."""
    return json_response(await test_clocks.create_clock(deps_of(request), tenant, body))


@router.get("", response_model=ListObject[TestClock], summary="List test clocks")
async def list_clocks(request: Request, tenant: SecretTenant, page: Page) -> Response:
    data, has_more = await test_clocks.list_clocks(deps_of(request), tenant, page)
    return list_response(request, data, has_more)


@router.get("/{clock_id}", response_model=TestClock, summary="Retrieve a test clock")
async def get_clock(request: Request, clock_id: str, tenant: SecretTenant) -> Response:
    return json_response(await test_clocks.get_clock(deps_of(request), tenant, clock_id))


@router.delete(
    "/{clock_id}",
    response_model=DeletedObject,
    summary="Delete a test clock",
    responses=_STATE_CONFLICT,
)
async def delete_clock(request: Request, clock_id: str, tenant: SecretTenant) -> Response:
    """Deletes its customers too (as `DELETE /v1/customers/{id}` does: their payment methods
    are detached). Refused while the clock is advancing."""
    return json_response(await test_clocks.delete_clock(deps_of(request), tenant, clock_id))


@router.post(
    "/{clock_id}/advance",
    response_model=TestClock,
    summary="Advance a test clock",
    responses=_STATE_CONFLICT,
)
async def advance_clock(
    request: Request, clock_id: str, body: TestClockAdvance, tenant: SecretTenant
) -> Response:
    """Answers at once with the clock `advancing`; the worker then runs everything due for
    the clock's customers, period by period, and the clock becomes `ready` at `frozen_time`
    (event `test_clock.ready`). `frozen_time` must be after the clock's: 400
    `frozen_time_not_after_current` otherwise."""
    return json_response(await test_clocks.advance_clock(deps_of(request), tenant, clock_id, body))
