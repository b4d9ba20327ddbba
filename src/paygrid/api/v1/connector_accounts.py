"""``/v1/connector_accounts`` and ``/v1/routing_rules``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from paygrid.api.authentication import secret_key
from paygrid.api.dependencies import deps_of
from paygrid.api.responses import COMMON_ERRORS, Page, json_response, list_response
from paygrid.domain.connector_accounts import ConnectorAccountStatus
from paygrid.schemas.common import DeletedObject, ListObject
from paygrid.schemas.connector_accounts import (
    PROVIDER_FIELD,
    ConnectorAccount,
    ConnectorAccountCreate,
    ConnectorAccountUpdate,
    Provider,
    RoutingRule,
    RoutingRuleCreate,
    RoutingRuleUpdate,
)
from paygrid.services import connector_accounts, routing
from paygrid.services.context import Tenant

router = APIRouter(
    prefix="/v1/connector_accounts", tags=["Connector accounts"], responses=COMMON_ERRORS
)
rules_router = APIRouter(prefix="/v1/routing_rules", tags=["Routing"], responses=COMMON_ERRORS)
SecretTenant = Annotated[Tenant, Depends(secret_key)]


@router.post("", response_model=ConnectorAccount, summary="Create a connector account")
async def create_account(
    request: Request, body: ConnectorAccountCreate, tenant: SecretTenant
) -> Response:
    """Credentials are encrypted at rest and never returned; responses show `…last4`.
    Test-mode accounts take test keys (`sk_test_…`) only, live-mode accounts live keys only.
    Register the returned `webhook_url` at the provider."""
    return json_response(await connector_accounts.create_account(deps_of(request), tenant, body))


@router.get("", response_model=ListObject[ConnectorAccount], summary="List connector accounts")
async def list_accounts(
    request: Request,
    tenant: SecretTenant,
    page: Page,
    provider: Annotated[Provider | None, Query(**PROVIDER_FIELD)] = None,
    status: Annotated[Literal["enabled", "disabled"] | None, Query()] = None,
) -> Response:
    data, has_more = await connector_accounts.list_accounts(
        deps_of(request), tenant, page, provider=provider, status=status
    )
    return list_response(request, data, has_more)


@router.get(
    "/{account_id}", response_model=ConnectorAccount, summary="Retrieve a connector account"
)
async def get_account(request: Request, account_id: str, tenant: SecretTenant) -> Response:
    return json_response(await connector_accounts.get_account(deps_of(request), tenant, account_id))


@router.post("/{account_id}", response_model=ConnectorAccount, summary="Update a connector account")
async def update_account(
    request: Request, account_id: str, body: ConnectorAccountUpdate, tenant: SecretTenant
) -> Response:
    """Only the fields sent change; `credentials` replaces both secrets (key rotation)."""
    return json_response(
        await connector_accounts.update_account(deps_of(request), tenant, account_id, body)
    )


@router.post(
    "/{account_id}/disable",
    response_model=ConnectorAccount,
    summary="Disable a connector account",
)
async def disable_account(request: Request, account_id: str, tenant: SecretTenant) -> Response:
    """Routing skips a disabled account. Payments it already processed can still be
    captured, voided and refunded, and its webhooks are still accepted."""
    return json_response(
        await connector_accounts.set_status(
            deps_of(request), tenant, account_id, ConnectorAccountStatus.DISABLED
        )
    )


@router.post(
    "/{account_id}/enable", response_model=ConnectorAccount, summary="Enable a connector account"
)
async def enable_account(request: Request, account_id: str, tenant: SecretTenant) -> Response:
    return json_response(
        await connector_accounts.set_status(
            deps_of(request), tenant, account_id, ConnectorAccountStatus.ENABLED
        )
    )


@rules_router.post("", response_model=RoutingRule, summary="Create a routing rule")
async def create_rule(request: Request, body: RoutingRuleCreate, tenant: SecretTenant) -> Response:
    """Rules run in `priority` order (lower first). The first rule whose conditions all
    hold picks the connector accounts to try, in order; failover moves down the list only
    when an attempt provably never reached the provider."""
    return json_response(await routing.create_rule(deps_of(request), tenant, body))


@rules_router.get("", response_model=ListObject[RoutingRule], summary="List routing rules")
async def list_rules(request: Request, tenant: SecretTenant, page: Page) -> Response:
    data, has_more = await routing.list_rules(deps_of(request), tenant, page)
    return list_response(request, data, has_more)


@rules_router.get("/{rule_id}", response_model=RoutingRule, summary="Retrieve a routing rule")
async def get_rule(request: Request, rule_id: str, tenant: SecretTenant) -> Response:
    return json_response(await routing.get_rule(deps_of(request), tenant, rule_id))


@rules_router.post("/{rule_id}", response_model=RoutingRule, summary="Update a routing rule")
async def update_rule(
    request: Request, rule_id: str, body: RoutingRuleUpdate, tenant: SecretTenant
) -> Response:
    return json_response(await routing.update_rule(deps_of(request), tenant, rule_id, body))


@rules_router.delete("/{rule_id}", response_model=DeletedObject, summary="Delete a routing rule")
async def delete_rule(request: Request, rule_id: str, tenant: SecretTenant) -> Response:
    return json_response(await routing.delete_rule(deps_of(request), tenant, rule_id))
