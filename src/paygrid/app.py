"""create_app(): routers, middleware, lifespan and wiring, and nothing else."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from fastapi import Depends, FastAPI

from paygrid import logs
from paygrid.api import errors, health, metrics
from paygrid.api.edge import HttpEdge
from paygrid.api.idempotency import Idempotency
from paygrid.api.openapi_links import add_links
from paygrid.api.query import only_declared_parameters
from paygrid.api.rate_limits import close_storage, storage_for
from paygrid.api.v1 import (
    account,
    admin,
    api_keys,
    audit_log,
    billing_portal,
    billing_settings,
    checkout_sessions,
    connector_accounts,
    customers,
    events,
    invoiceitems,
    invoices,
    payment_links,
    payment_methods,
    payments,
    prices,
    products,
    provider_webhooks,
    reconciliation,
    refunds,
    reports,
    settlements,
    setup_intents,
    subscriptions,
    test_clocks,
    test_helpers,
    webhook_endpoints,
)
from paygrid.bootstrap import Background, build_deps, open_read_pool
from paygrid.clock import SYSTEM_CLOCK
from paygrid.config import Settings
from paygrid.dashboard import routes as dashboard
from paygrid.db import engine
from paygrid.db.fence import ProcessRole
from paygrid.db.listener import Notifications
from paygrid.dependencies import Deps
from paygrid.observability import tracing
from paygrid.observability.metrics import Metrics
from paygrid.openapi_docs import API_DESCRIPTION, TAGS, optional_empty_bodies, storable_text
from paygrid.services import lookup_invalidation
from paygrid.services.merchants import Authenticator
from paygrid.services.restore.fence import FenceWatch, WriteFence
from paygrid.web import checkout, demo_store, docs, hosted_invoices, pages, portal
from paygrid.web import payment_links as link_pages

V1_PARAMETER_CHECK = Depends(only_declared_parameters)
# Serving allocates many short-lived objects per request; at the default threshold (700)
# the cyclic collector took 6 % of the CPU under load (profile of 6202a46).
GC_YOUNG_THRESHOLD = 50_000


def create_app(
    settings: Settings, database_url: str | None = None, deps: Deps | None = None
) -> FastAPI:
    """The ASGI app. Pass ``deps`` to share an existing pool (tests), or ``database_url`` to
    have the app open its own pool for its lifetime."""
    logs.configure(settings.log_level)
    tracing.configure(settings.otlp_endpoint)
    app_metrics = deps.metrics if deps is not None else Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned: list[asyncpg.Pool] = []
        background: Background | None = None
        notifications: Notifications | None = None
        fence_watch: FenceWatch | None = None
        if deps is None:
            assert database_url is not None
            owned.append(await engine.create_pool(database_url, settings.db_pool_size))
            owned.append(
                await engine.create_pool(
                    database_url, settings.bookkeeping_pool_size(), durable=False
                )
            )
            read_pool = await open_read_pool(settings)  # reports' replica, when configured
            owned.extend([] if read_pool is None else [read_pool])
            app.state.deps = build_deps(
                owned[0],
                settings,
                bookkeeping_pool=owned[1],
                app_metrics=app_metrics,
                read_pool=read_pool,
            )
            # The process's one LISTEN connection, for the worker, the event dispatcher and
            # the lookup caches: PostgreSQL wakes every listening connection on every
            # notifying commit, whatever its channels.
            # Behind a transaction-mode pooler it connects directly (PAYGRID_DATABASE_DIRECT_URL).
            listen_pool = await engine.create_listen_pool(database_url)
            owned.extend([] if listen_pool is None else [listen_pool])
            notifications = Notifications(listen_pool or owned[0], owner="serve")
            await notifications.start()
            # The restore's write fence, heard on the same LISTEN hub and read before any
            # background work starts: a process started during a restore begins fenced
            # (services/restore/fence.py).
            fence_watch = FenceWatch(app.state.write_fence, app.state.deps, ProcessRole.SERVE)
            await fence_watch.start(notifications)
            if settings.worker_in_process:
                # Only an app that owns its pool runs a worker: apps built on shared deps
                # (tests, embedders) run their own, or none.
                background = Background(app.state.deps, settings, notifications=notifications)
                app.state.write_fence.on_change(background.hold)  # held while restoring
                app.state.write_fence.count(background.jobs_in_flight)  # and drained
                await background.start()
        app.state.authenticator = Authenticator(app.state.deps.pool, app.state.deps.lookups)
        # Only an app that owns its pool caches lookups: it listens for their changes.
        listener = (
            await lookup_invalidation.listen(app.state.deps.lookups, notifications)
            if notifications is not None
            else None
        )
        if owned:
            # Serving: what start-up built lives as long as the process; no collection need
            # scan it again, and young objects are collected less often.
            gc.collect()
            gc.freeze()
            gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
        try:
            yield
        finally:
            if listener is not None:
                await listener.stop()
            if background is not None:
                await background.stop()
            if fence_watch is not None:  # after its jobs: a restore waits for those
                await fence_watch.stop()
            if notifications is not None:
                await notifications.stop()
            await close_storage(app.state.rate_limit_storage)
            if owned:
                await app.state.deps.connectors.aclose()
            for pool in owned:
                await pool.close()

    app = FastAPI(
        title="paygrid",
        version="0.1.0",
        description=API_DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        # No redirects: /v1/payments/ is a 404 like any unknown URL (a 307 built from the
        # Host header would send a client's body, card data included, wherever it points).
        redirect_slashes=False,
        docs_url=None,  # paygrid.web.docs serves /docs and /redoc from local assets
        redoc_url=None,
        # FastAPI's native OpenTelemetry off: paygrid makes its own request spans
        # (observability/tracing.py, which also sets the global provider for libraries),
        # Prometheus metrics and log lines. Left on, it would trace every request a second
        # time once tracing is configured, and ask OpenTelemetry's global providers
        # whether they are configured on every request even when it is not.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.migration_head = engine.head_revision()
    app.state.write_fence = WriteFence()
    app.state.rate_limit_storage = storage_for(settings)
    if deps is not None:
        app.state.deps = deps
        app.state.authenticator = Authenticator(deps.pool, deps.lookups)
    errors.install(app, public_url=settings.base_url())
    generate_openapi = app.openapi

    def described() -> dict[str, Any]:
        """The generated document, post-processed once (FastAPI caches it on the app)."""
        return app.openapi_schema or add_links(
            storable_text(optional_empty_bodies(generate_openapi()))
        )

    app.openapi = described  # type: ignore[method-assign]
    for router in (
        payments.router,
        checkout_sessions.router,
        refunds.router,
        customers.router,
        payment_methods.router,
        setup_intents.router,
        setup_intents.mandates_router,
        products.router,
        prices.router,
        payment_links.router,
        invoiceitems.router,
        subscriptions.upcoming_router,  # before invoices' /{invoice_id}
        invoices.router,
        subscriptions.router,
        billing_portal.router,
        test_clocks.router,
        test_helpers.router,
        billing_settings.router,
        account.router,
        reports.router,
        reports.runs_router,
        settlements.router,
        reconciliation.router,
        reconciliation.discrepancies_router,
        events.router,
        webhook_endpoints.router,
        webhook_endpoints.events_router,
        api_keys.router,
        audit_log.router,
        connector_accounts.router,
        connector_accounts.rules_router,
        provider_webhooks.router,
        admin.router,
        health.router,
        metrics.router,
        pages.router,
        docs.router,
        checkout.router,
        hosted_invoices.router,
        link_pages.router,
        portal.router,
        dashboard.router,
    ):
        # The API's parameters are checked against each route's declared ones; HTML pages
        # (checkout, dashboard) take what browsers and links add, and providers' webhooks
        # send what the provider sends.
        api = router.prefix.startswith("/v1") and router is not provider_webhooks.router
        app.include_router(router, dependencies=[V1_PARAMETER_CHECK] if api else None)
    if settings.demo_store:
        app.include_router(demo_store.router)
    # Idempotency innermost, then the one pass every request makes first (api/edge.py):
    # CORS preflights, request id and log line, telemetry, body guard, the per-IP limit,
    # the API key, the per-key limits. Its headers go on every response, the last-resort
    # 500 included.
    app.add_middleware(Idempotency)
    app.add_middleware(
        HttpEdge,
        settings=settings,
        metrics=app_metrics,
        storage=app.state.rate_limit_storage,
        clock=deps.clock if deps is not None else SYSTEM_CLOCK,
        fence=app.state.write_fence,
    )
    return app


def app_from_environment() -> FastAPI:
    """uvicorn factory: settings and the database URL come from the environment."""
    from paygrid.config import Settings as EnvSettings

    settings = EnvSettings()
    assert settings.database_url is not None, "serve sets PAYGRID_DATABASE_URL"
    return create_app(settings, database_url=settings.database_url.get_secret_value())
