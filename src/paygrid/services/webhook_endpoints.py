"""Webhook endpoints: create (the secret is shown once), read, update, delete, rotate the
secret, pause and resume, and list deliveries."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import asyncpg

from paygrid.crypto import KeyRing
from paygrid.db import webhooks as webhooks_db
from paygrid.db.executor import Executor
from paygrid.db.webhooks import NewEndpoint, WebhookEndpointRow
from paygrid.dependencies import Deps
from paygrid.domain.errors import ResourceMissing
from paygrid.domain.pagination import PageRequest
from paygrid.domain.webhooks import DisabledReason, EndpointStatus
from paygrid.ids import new_id
from paygrid.schemas.common import DeletedObject
from paygrid.schemas.webhooks import (
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointCreate,
    WebhookEndpointUpdate,
)
from paygrid.services.context import Tenant
from paygrid.webhooks import signing
from paygrid.webhooks.destinations import check_url


async def create_endpoint(
    deps: Deps, tenant: Tenant, params: WebhookEndpointCreate
) -> WebhookEndpoint:
    """Create an endpoint; the response carries its secret, this once only."""
    await _check(deps, tenant, params.url)
    endpoint_id = new_id("we")
    secret = signing.new_secret()
    row = await webhooks_db.insert_endpoint(
        deps.pool,
        NewEndpoint(
            id=endpoint_id,
            merchant_id=tenant.merchant_id,
            livemode=tenant.livemode,
            url=params.url,
            description=params.description,
            enabled_events=params.enabled_events,
            metadata=params.metadata,
            secret_ciphertext=deps.keys.encrypt(secret, context=endpoint_id),
        ),
    )
    return WebhookEndpoint.from_row(row, secret=secret)


async def get_endpoint(deps: Deps, tenant: Tenant, endpoint_id: str) -> WebhookEndpoint:
    return WebhookEndpoint.from_row(await _get(deps.pool, tenant, endpoint_id))


async def update_endpoint(
    deps: Deps, tenant: Tenant, endpoint_id: str, params: WebhookEndpointUpdate
) -> WebhookEndpoint:
    """Change only the fields sent (null leaves a required field unchanged and clears
    ``description``). Re-enabling clears the reason it was disabled."""
    sent = params.model_dump(exclude_unset=True)
    changes = {k: v for k, v in sent.items() if v is not None or k == "description"}
    if params.url is not None:
        await _check(deps, tenant, params.url)
    if params.status is not None:
        enabled = EndpointStatus(params.status) is EndpointStatus.ENABLED
        changes.update(disabled_reason=None if enabled else DisabledReason.BY_MERCHANT.value)
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await _get(conn, tenant, endpoint_id, lock=True)
        if changes:
            row = await webhooks_db.update_endpoint(conn, endpoint_id, changes)
    return WebhookEndpoint.from_row(row)


async def delete_endpoint(deps: Deps, tenant: Tenant, endpoint_id: str) -> DeletedObject:
    async with deps.pool.acquire() as conn, conn.transaction():
        await _get(conn, tenant, endpoint_id, lock=True)
        await webhooks_db.update_endpoint(conn, endpoint_id, {"deleted_at": deps.clock.now()})
    return DeletedObject(id=endpoint_id, object="webhook_endpoint")


async def rotate_secret(deps: Deps, tenant: Tenant, endpoint_id: str) -> WebhookEndpoint:
    """Issue a new secret. For ``PAYGRID_WEBHOOK_SECRET_OVERLAP_HOURS`` (24) deliveries are
    signed with both the old and the new secret, so receivers can switch without a gap."""
    secret = signing.new_secret()
    overlap = timedelta(hours=deps.settings.webhook_secret_overlap_hours)
    async with deps.pool.acquire() as conn, conn.transaction():
        current = await _get(conn, tenant, endpoint_id, lock=True)
        old = deps.keys.decrypt(current.secret_ciphertext, context=endpoint_id)
        row = await webhooks_db.update_endpoint(
            conn,
            endpoint_id,
            {
                "secret_ciphertext": deps.keys.encrypt(secret, context=endpoint_id),
                "previous_secret_ciphertext": deps.keys.encrypt(old, context=endpoint_id),
                "previous_secret_expires_at": deps.clock.now() + overlap,
            },
        )
    return WebhookEndpoint.from_row(row, secret=secret)


async def list_endpoints(
    deps: Deps, tenant: Tenant, page: PageRequest
) -> tuple[list[WebhookEndpoint], bool]:
    rows, has_more = await webhooks_db.list_endpoints(
        deps.pool, tenant.merchant_id, tenant.livemode, page
    )
    return [WebhookEndpoint.from_row(r) for r in rows], has_more


async def list_deliveries(
    deps: Deps,
    tenant: Tenant,
    page: PageRequest,
    *,
    endpoint_id: str | None = None,
    event_id: str | None = None,
) -> tuple[list[WebhookDelivery], bool]:
    """Deliveries (newest first) with every attempt, for one endpoint or one event."""
    rows, has_more = await webhooks_db.list_deliveries(
        deps.pool,
        tenant.merchant_id,
        tenant.livemode,
        page,
        endpoint_id=endpoint_id,
        event_id=event_id,
    )
    attempts = await webhooks_db.attempts_by_delivery(deps.pool, [r.id for r in rows])
    return [WebhookDelivery.from_row(r, attempts.get(r.id, [])) for r in rows], has_more


async def require_endpoint(deps: Deps, tenant: Tenant, endpoint_id: str) -> WebhookEndpointRow:
    """The tenant's endpoint; another merchant's, the other mode's or a deleted one is missing."""
    return await _get(deps.pool, tenant, endpoint_id)


async def _check(deps: Deps, tenant: Tenant, url: str) -> None:
    await check_url(
        url,
        livemode=tenant.livemode,
        allowed_hosts=deps.settings.allowed_webhook_hosts(),
        resolver=deps.resolver,
    )


async def _get(
    conn: Executor, tenant: Tenant, endpoint_id: str, *, lock: bool = False
) -> WebhookEndpointRow:
    row = await webhooks_db.get_endpoint(
        conn, tenant.merchant_id, tenant.livemode, endpoint_id, lock=lock
    )
    if row is None:
        raise ResourceMissing(f"No such webhook endpoint: '{endpoint_id}'", param="id")
    return row


async def rotate_encryption(pool: asyncpg.Pool, keys: KeyRing) -> tuple[int, int]:
    """Re-encrypt every endpoint's signing secret (and the previous one, while rotation
    overlaps) under the active key, deleted endpoints included, so an old key can then be
    dropped from the ring. Each row is locked while it changes, so a concurrent secret
    rotation is not overwritten. Returns (re-encrypted, already current)."""
    rotated = current = 0
    for endpoint_id in await webhooks_db.every_endpoint_id(pool):
        async with pool.acquire() as conn, conn.transaction():
            sealed = await webhooks_db.lock_secrets(conn, endpoint_id)
            assert sealed is not None  # endpoints are soft-deleted only
            previous = sealed.previous
            if keys.is_current(sealed.current) and (previous is None or keys.is_current(previous)):
                current += 1
                continue
            resealed = replace(
                sealed,
                current=_reseal(keys, sealed.current, endpoint_id),
                previous=None if previous is None else _reseal(keys, previous, endpoint_id),
            )
            await webhooks_db.store_secrets(conn, resealed)
            rotated += 1
    return rotated, current


def _reseal(keys: KeyRing, ciphertext: bytes, endpoint_id: str) -> bytes:
    """``ciphertext`` under the ring's active key (unchanged when it already is)."""
    if keys.is_current(ciphertext):
        return ciphertext
    return keys.encrypt(keys.decrypt(ciphertext, context=endpoint_id), context=endpoint_id)
