"""create_app(): routers, middleware, lifespan and wiring, and nothing else."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from fastapi import Depends, FastAPI

from paygrid import logs
from paygrid.api import errors, health, metrics
from paygrid.api.authentication import ApiKeyAuth
from paygrid.api.idempotency import Idempotency
from paygrid.api.middleware import BodyGuard, RequestContext
from paygrid.api.openapi_links import add_links
from paygrid.api.query import only_declared_parameters
from paygrid.api.rate_limits import RateLimits, close_storage, storage_for
from paygrid.api.security import SecurityHeaders
from paygrid.api.v1 import (
    admin,
    api_keys,
    audit_log,
    checkout_sessions,
    connector_accounts,
    customers,
    events,
    payment_methods,
    payments,
    provider_webhooks,
    refunds,
    webhook_endpoints,
)
from paygrid.broker.connection import EventBroker
from paygrid.clock import SYSTEM_CLOCK, Clock
from paygrid.config import FAILURE_MODES, Settings
from paygrid.connectors.registry import ConnectorRegistry
from paygrid.connectors.simulator import SimulatorConnector
from paygrid.dashboard import routes as dashboard
from paygrid.db import engine
from paygrid.observability import tracing
from paygrid.observability.metrics import Metrics
from paygrid.observability.middleware import Telemetry
from paygrid.openapi_docs import API_DESCRIPTION, TAGS, optional_empty_bodies, storable_text
from paygrid.services.context import Deps
from paygrid.services.merchants import Authenticator
from paygrid.web import checkout, demo_store, docs, pages
from paygrid.worker.process import Background

V1_PARAMETER_CHECK = Depends(only_declared_parameters)


def build_deps(
    pool: asyncpg.Pool,
    settings: Settings,
    bookkeeping_pool: asyncpg.Pool | None = None,
    app_metrics: Metrics | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> Deps:
    bookkeeping = bookkeeping_pool or pool
    app_metrics = app_metrics or Metrics()
    simulator = SimulatorConnector(
        bookkeeping,
        base_url=settings.base_url(),
        latency_ms=settings.simulator_latency_ms,
        request_latency_ms=settings.simulator_request_latency_ms,
        failure_mode=settings.simulator_failure_mode,
        clock=clock,
    )
    amqp_url = settings.amqp_url
    keys = settings.key_ring()

    def account_simulator(failure_mode: str) -> SimulatorConnector:
        return SimulatorConnector(
            bookkeeping,
            base_url=settings.base_url(),
            latency_ms=settings.simulator_latency_ms,
            request_latency_ms=settings.simulator_request_latency_ms,
            failure_mode=failure_mode if failure_mode in FAILURE_MODES else "none",  # type: ignore[arg-type]
            clock=clock,
        )

    registry = ConnectorRegistry(
        simulator,
        keys,
        simulator_factory=account_simulator,
        timeout_seconds=settings.connector_timeout_seconds,
        breaker_threshold=settings.circuit_breaker_threshold,
        breaker_cooldown=settings.circuit_breaker_cooldown_seconds,
        clock=clock.monotonic,
        observer=app_metrics,
    )
    return Deps(
        pool=pool,
        settings=settings,
        connectors=registry,
        bookkeeping_pool=bookkeeping,
        keys=keys,
        broker=None if amqp_url is None else EventBroker(amqp_url.get_secret_value()),
        metrics=app_metrics,
        clock=clock,
    )


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
        if deps is None:
            assert database_url is not None
            owned.append(await engine.create_pool(database_url, settings.db_pool_size))
            owned.append(
                await engine.create_pool(
                    database_url, settings.bookkeeping_pool_size(), durable=False
                )
            )
            app.state.deps = build_deps(
                owned[0], settings, bookkeeping_pool=owned[1], app_metrics=app_metrics
            )
            if settings.worker_in_process:
                # Only an app that owns its pool runs a worker: apps built on shared deps
                # (tests, embedders) run their own, or none.
                background = Background(app.state.deps, settings)
                await background.start()
        app.state.authenticator = Authenticator(app.state.deps.pool)
        try:
            yield
        finally:
            if background is not None:
                await background.stop()
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
    )
    app.state.migration_head = engine.head_revision()
    app.state.rate_limit_storage = storage_for(settings)
    if deps is not None:
        app.state.deps = deps
        app.state.authenticator = Authenticator(deps.pool)
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
        dashboard.router,
    ):
        # The API's parameters are checked against each route's declared ones; HTML pages
        # (checkout, dashboard) take what browsers and links add, and providers' webhooks
        # send what the provider sends.
        api = router.prefix.startswith("/v1") and router is not provider_webhooks.router
        app.include_router(router, dependencies=[V1_PARAMETER_CHECK] if api else None)
    if settings.demo_store:
        app.include_router(demo_store.router)
    # Added innermost first: the request passes RequestContext, Telemetry, BodyGuard,
    # the per-IP limit, ApiKeyAuth, the per-key limits, Idempotency, then the router.
    app.add_middleware(Idempotency)
    app.add_middleware(RateLimits, settings=settings, storage=app.state.rate_limit_storage)
    app.add_middleware(ApiKeyAuth)
    app.add_middleware(
        RateLimits, settings=settings, storage=app.state.rate_limit_storage, stage="ip"
    )
    app.add_middleware(BodyGuard, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(Telemetry, metrics=app_metrics)
    app.add_middleware(RequestContext)
    # Outermost: every response, the last-resort 500 included, gets the security headers,
    # and CORS preflights are answered before authentication.
    app.add_middleware(SecurityHeaders, settings=settings)
    return app


def app_from_environment() -> FastAPI:
    """uvicorn factory: settings and the database URL come from the environment."""
    from paygrid.config import Settings as EnvSettings

    settings = EnvSettings()
    assert settings.database_url is not None, "serve sets PAYGRID_DATABASE_URL"
    return create_app(settings, database_url=settings.database_url.get_secret_value())
