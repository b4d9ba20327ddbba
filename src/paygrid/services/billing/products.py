"""Products: create, retrieve, update (archive with ``active=false``), list, and delete,
which only a product no price names allows (as Stripe: archive it instead)."""

from __future__ import annotations

from paygrid.db import products as products_db
from paygrid.db.executor import Connection, Executor
from paygrid.db.pagination import PageRequest
from paygrid.db.products import ProductRow
from paygrid.dependencies import Deps
from paygrid.domain.errors import InvalidRequest, PaygridError, ResourceMissing
from paygrid.domain.events import EventType
from paygrid.ids import new_id
from paygrid.schemas.catalog import Product, ProductCreate, ProductUpdate
from paygrid.schemas.common import MAX_METADATA_KEYS, DeletedObject
from paygrid.services.context import Tenant
from paygrid.services.snapshots import emit_object


class ProductHasPrices(PaygridError):
    """This product has prices, so it cannot be deleted; archive it instead with
    active=false."""

    status_code = 400
    error_type = "invalid_request_error"
    default_code = "product_has_prices"


async def create_product(deps: Deps, tenant: Tenant, params: ProductCreate) -> Product:
    """Create a product and its ``product.created`` event in one transaction."""
    now = deps.clock.now()
    row = ProductRow(
        id=new_id("prod"),
        merchant_id=tenant.merchant_id,
        livemode=tenant.livemode,
        name=params.name,
        description=params.description or None,
        active=params.active,
        metadata=params.metadata,
        created_at=now,
        updated_at=now,
    )
    async with deps.pool.acquire() as conn, conn.transaction():
        created = await products_db.insert_product(conn, row)
        return await _emit(conn, created, EventType.PRODUCT_CREATED)


async def get_product(deps: Deps, tenant: Tenant, product_id: str) -> Product:
    """One of the tenant's products; another merchant's or mode's is missing (404)."""
    return Product.from_row(await require_product(deps.pool, tenant, product_id))


async def update_product(
    deps: Deps, tenant: Tenant, product_id: str, params: ProductUpdate
) -> Product:
    """Change only the fields sent (metadata merges; "" removes a key or the description)
    and emit ``product.updated``; a request that changes nothing writes nothing."""
    sent = params.model_dump(exclude_unset=True)
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await require_product(conn, tenant, product_id, lock="update")
        changes = _changes(row, sent)
        if not changes:
            return Product.from_row(row)
        updated = await products_db.update_product(conn, row.id, changes, deps.clock.now())
        return await _emit(conn, updated, EventType.PRODUCT_UPDATED)


def _changes(row: ProductRow, sent: dict[str, object]) -> dict[str, object]:
    changes: dict[str, object] = {}
    if sent.get("name") is not None:
        changes["name"] = sent["name"]
    if "description" in sent:
        changes["description"] = sent["description"] or None
    if sent.get("active") is not None:
        changes["active"] = sent["active"]
    if sent.get("metadata") is not None:
        metadata = sent["metadata"]
        assert isinstance(metadata, dict)
        changes["metadata"] = merged_metadata(row.metadata, metadata)
    current: dict[str, object] = {
        "name": row.name,
        "description": row.description,
        "active": row.active,
        "metadata": row.metadata,
    }
    return {k: v for k, v in changes.items() if current[k] != v}


async def delete_product(deps: Deps, tenant: Tenant, product_id: str) -> DeletedObject:
    """Delete a product that no price names, with ``product.deleted`` (its last state);
    one with prices, even archived ones, is refused with ``product_has_prices``."""
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await require_product(conn, tenant, product_id, lock="update")
        if await products_db.has_prices(conn, row.id):
            raise ProductHasPrices(
                f"Product '{row.id}' has prices, so it cannot be deleted. Archive it "
                "instead: POST /v1/products/{id} with active=false.",
                param="id",
            )
        await products_db.delete_product(conn, row.id)
        await _emit(conn, row, EventType.PRODUCT_DELETED)
    return DeletedObject(id=product_id, object="product")


async def list_products(
    deps: Deps, tenant: Tenant, page: PageRequest, active: bool | None
) -> tuple[list[Product], bool]:
    """A page of the tenant's products, newest first, optionally only (in)active ones."""
    rows, has_more = await products_db.list_products(
        deps.pool, tenant.merchant_id, tenant.livemode, page, active
    )
    return [Product.from_row(r) for r in rows], has_more


async def require_product(
    conn: Executor, tenant: Tenant, product_id: str, *, lock: str | None = None
) -> ProductRow:
    """The tenant's product, or ``ResourceMissing`` naming it."""
    row = await products_db.get_product(
        conn, tenant.merchant_id, tenant.livemode, product_id, lock=lock
    )
    if row is None:
        raise ResourceMissing(f"No such product: '{product_id}'", param="id")
    return row


def merged_metadata(current: dict[str, str], sent: dict[str, str]) -> dict[str, str]:
    """``sent`` merged into ``current``; a key sent as "" is removed."""
    merged = {**current, **sent}
    kept = {k: v for k, v in merged.items() if v != ""}
    if len(kept) > MAX_METADATA_KEYS:
        raise InvalidRequest(
            f"metadata can have at most {MAX_METADATA_KEYS} keys; this update would "
            f"leave {len(kept)}.",
            param="metadata",
        )
    return kept


async def _emit(conn: Connection, row: ProductRow, event: EventType) -> Product:
    view = Product.from_row(row)
    await emit_object(conn, row, event, view.model_dump(mode="json"))
    return view
