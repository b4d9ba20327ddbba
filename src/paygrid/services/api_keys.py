"""Reading a merchant's API keys, as the API and the dashboard list and show them (never
their secrets). Creating, rolling and revoking keys is ``services.merchants``'s."""

from __future__ import annotations

from paygrid.db import merchants as merchants_db
from paygrid.dependencies import Deps
from paygrid.domain.errors import ResourceMissing
from paygrid.domain.pagination import PageRequest
from paygrid.schemas.api_keys import ApiKey
from paygrid.services.context import Tenant


async def list_keys(deps: Deps, tenant: Tenant, page: PageRequest) -> tuple[list[ApiKey], bool]:
    """One page of the tenant's keys, newest first, and whether more exist."""
    rows, has_more = await merchants_db.list_keys_page(
        deps.pool, tenant.merchant_id, tenant.livemode, page
    )
    return [ApiKey.from_row(r) for r in rows], has_more


async def get_key(deps: Deps, tenant: Tenant, key_id: str) -> ApiKey:
    """One of the tenant's keys (revoked ones included); another tenant's is missing."""
    row = await merchants_db.get_key(deps.pool, tenant.merchant_id, tenant.livemode, key_id)
    if row is None:
        raise ResourceMissing(f"No such API key: '{key_id}'", param="id")
    return ApiKey.from_row(row)
