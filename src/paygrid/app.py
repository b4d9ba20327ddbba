"""create_app(): routers, middleware, lifespan and wiring, and nothing else."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import structlog
from fastapi import FastAPI

from paygrid import logs
from paygrid.api import errors, health
from paygrid.api.authentication import ApiKeyAuth
from paygrid.api.idempotency import Idempotency
from paygrid.api.middleware import BodyGuard, RequestContext
from paygrid.api.v1 import customers, payment_methods, payments, refunds
from paygrid.config import Settings
from paygrid.connectors.registry import ConnectorRegistry
from paygrid.connectors.simulator import SimulatorConnector
from paygrid.db import engine
from paygrid.db import idempotency as idempotency_db
from paygrid.openapi_docs import API_DESCRIPTION, TAGS
from paygrid.services.context import Deps
from paygrid.services.merchants import Authenticator
from paygrid.web import pages

log = structlog.get_logger("paygrid.app")
PURGE_INTERVAL_SECONDS = 600


def build_deps(
    pool: asyncpg.Pool, settings: Settings, bookkeeping_pool: asyncpg.Pool | None = None
) -> Deps:
    bookkeeping = bookkeeping_pool or pool
    simulator = SimulatorConnector(
        bookkeeping,
        base_url=settings.base_url(),
        latency_ms=settings.simulator_latency_ms,
        failure_mode=settings.simulator_failure_mode,
    )
    return Deps(
        pool=pool,
        settings=settings,
        connectors=ConnectorRegistry(simulator),
        bookkeeping_pool=bookkeeping,
    )


async def _purge_idempotency_keys(deps: Deps) -> None:
    while True:
        with contextlib.suppress(Exception):  # a failed purge is retried next round
            purged = await idempotency_db.purge_expired(
                deps.pool, deps.settings.idempotency_ttl_hours
            )
            if purged:
                log.info("idempotency_keys.purged", count=purged)
        await asyncio.sleep(PURGE_INTERVAL_SECONDS)


def create_app(
    settings: Settings, database_url: str | None = None, deps: Deps | None = None
) -> FastAPI:
    """The ASGI app. Pass ``deps`` to share an existing pool (tests), or ``database_url`` to
    have the app open its own pool for its lifetime."""
    logs.configure(settings.log_level)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned: list[asyncpg.Pool] = []
        if deps is None:
            assert database_url is not None
            owned.append(await engine.create_pool(database_url, settings.db_pool_size))
            owned.append(
                await engine.create_pool(
                    database_url, settings.bookkeeping_pool_size(), durable=False
                )
            )
            app.state.deps = build_deps(owned[0], settings, bookkeeping_pool=owned[1])
        app.state.authenticator = Authenticator(app.state.deps.pool)
        purge = asyncio.create_task(_purge_idempotency_keys(app.state.deps))
        try:
            yield
        finally:
            purge.cancel()
            for pool in owned:
                await pool.close()

    app = FastAPI(
        title="paygrid",
        version="0.1.0",
        description=API_DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    app.state.migration_head = engine.head_revision()
    if deps is not None:
        app.state.deps = deps
        app.state.authenticator = Authenticator(deps.pool)
    errors.install(app)
    for router in (
        payments.router,
        refunds.router,
        customers.router,
        payment_methods.router,
        health.router,
        pages.router,
    ):
        app.include_router(router)
    # Added innermost first: the request passes RequestContext, BodyGuard, ApiKeyAuth,
    # Idempotency, then the router.
    app.add_middleware(Idempotency)
    app.add_middleware(ApiKeyAuth)
    app.add_middleware(BodyGuard, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContext)
    return app


def app_from_environment() -> FastAPI:
    """uvicorn factory: settings and the database URL come from the environment."""
    from paygrid.config import Settings as EnvSettings

    settings = EnvSettings()
    assert settings.database_url is not None, "serve sets PAYGRID_DATABASE_URL"
    return create_app(settings, database_url=settings.database_url.get_secret_value())
