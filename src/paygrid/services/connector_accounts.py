"""Connector accounts: create (credentials encrypted at rest), read, update, disable and
enable; and re-encryption of every account's credentials under the active key."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import asyncpg

from paygrid.connectors.base import ProviderFacts
from paygrid.connectors.registry import ProviderCatalog, capability_names
from paygrid.crypto import KeyRing
from paygrid.db import connector_accounts as accounts_db
from paygrid.db.connector_accounts import (
    AccountChanges,
    ConnectorAccountRow,
    NewConnectorAccount,
    SealedCredentials,
)
from paygrid.db.pagination import PageRequest
from paygrid.dependencies import Deps
from paygrid.domain.connector_accounts import ConnectorAccountStatus
from paygrid.domain.errors import InvalidRequest, ResourceMissing, UnsupportedCurrency
from paygrid.ids import new_id
from paygrid.money import get_currency
from paygrid.schemas.connector_accounts import (
    ConnectorAccount,
    ConnectorAccountCreate,
    ConnectorAccountUpdate,
    Credentials,
)
from paygrid.services.context import Tenant


async def create_account(
    deps: Deps, tenant: Tenant, params: ConnectorAccountCreate
) -> ConnectorAccount:
    facts = known_provider(deps.connectors.providers, params.provider)
    if facts.test_mode_only is not None and tenant.livemode:
        raise InvalidRequest(facts.test_mode_only, param="provider")
    credentials = _check_credentials(facts, tenant.livemode, params.credentials)
    currencies = _check_currencies(facts, params.currencies)
    api_base = _check_api_base(tenant.livemode, params.api_base)
    account_id = new_id("ca")
    new = NewConnectorAccount(
        id=account_id,
        merchant_id=tenant.merchant_id,
        livemode=tenant.livemode,
        provider=params.provider,
        name=params.name,
        currencies=currencies,
        api_base=api_base,
        metadata=params.metadata,
        **_sealed(deps.keys, account_id, credentials),
    )
    return view(deps, await accounts_db.insert_account(deps.pool, new))


async def get_account(deps: Deps, tenant: Tenant, account_id: str) -> ConnectorAccount:
    return view(deps, await get_row(deps.pool, tenant, account_id))


async def list_accounts(
    deps: Deps, tenant: Tenant, page: PageRequest, *, provider: str | None, status: str | None
) -> tuple[list[ConnectorAccount], bool]:
    if provider is not None:
        known_provider(deps.connectors.providers, provider)
    rows, has_more = await accounts_db.list_accounts(
        deps.pool,
        tenant.merchant_id,
        tenant.livemode,
        page,
        provider=provider,
        status=None if status is None else ConnectorAccountStatus(status),
    )
    return [view(deps, row) for row in rows], has_more


async def update_account(
    deps: Deps, tenant: Tenant, account_id: str, params: ConnectorAccountUpdate
) -> ConnectorAccount:
    row = await get_row(deps.pool, tenant, account_id)
    facts = deps.connectors.providers.facts(row.provider)
    sent = params.model_dump(exclude_unset=True)
    changes = AccountChanges()
    if "name" in sent:
        changes["name"] = params.name
    if params.currencies is not None:
        changes["currencies"] = _check_currencies(facts, params.currencies)
    if "api_base" in sent:
        changes["api_base"] = _check_api_base(tenant.livemode, params.api_base)
    if params.metadata is not None:
        changes["metadata"] = params.metadata
    if params.credentials is not None:
        credentials = _check_credentials(facts, tenant.livemode, params.credentials)
        changes = AccountChanges(**changes, **_sealed(deps.keys, account_id, credentials))
    if not changes:
        return view(deps, row)
    return view(deps, await accounts_db.update_account(deps.pool, account_id, changes))


async def set_status(
    deps: Deps, tenant: Tenant, account_id: str, status: ConnectorAccountStatus
) -> ConnectorAccount:
    """Disable (routing skips it; its existing payments can still be captured and refunded)
    or enable an account."""
    await get_row(deps.pool, tenant, account_id)
    changes = AccountChanges(status=status)
    return view(deps, await accounts_db.update_account(deps.pool, account_id, changes))


async def rotate_encryption(pool: asyncpg.Pool, keys: KeyRing) -> tuple[int, int]:
    """Re-encrypt every account's credentials under the active key. Returns (re-encrypted,
    already current)."""
    rotated = current = 0
    for sealed in await accounts_db.all_account_credentials(pool):
        account_id = sealed.account_id
        if keys.is_current(sealed.credentials):
            current += 1
            continue
        plain = keys.decrypt(sealed.credentials, context=account_id)
        # Compare-and-set: credentials replaced meanwhile (an update through the API) are
        # left alone, and are not counted as re-encrypted here.
        if await accounts_db.replace_credentials(
            pool, account_id, keys.encrypt(plain, context=account_id), expected=sealed.credentials
        ):
            rotated += 1
    return rotated, current


def view(deps: Deps, row: ConnectorAccountRow) -> ConnectorAccount:
    return ConnectorAccount.from_row(
        row,
        capabilities=capability_names(deps.connectors.providers.facts(row.provider).capabilities),
        webhook_url=f"{deps.settings.base_url()}/v1/provider_webhooks/{row.id}",
    )


async def get_row(pool: asyncpg.Pool, tenant: Tenant, account_id: str) -> ConnectorAccountRow:
    row = await accounts_db.get_account(pool, tenant.merchant_id, tenant.livemode, account_id)
    if row is None:
        raise ResourceMissing(f"No such connector account: '{account_id}'", param="id")
    return row


def known_provider(providers: ProviderCatalog, name: str) -> ProviderFacts:
    """The facts of the provider a request names; refused like any invalid parameter."""
    if name not in providers:
        quoted = [f"'{known}'" for known in providers.names()]
        choices = f"{', '.join(quoted[:-1])} or {quoted[-1]}" if len(quoted) > 1 else quoted[0]
        raise InvalidRequest(
            f"Invalid provider: Input should be {choices}.",
            param="provider",
            code="parameter_invalid",
        )
    return providers.facts(name)


def _check_credentials(
    facts: ProviderFacts, livemode: bool, credentials: Credentials | None
) -> dict[str, str | None]:
    if not facts.credentials_required:
        return {"secret_key": credentials.secret_key if credentials else None}
    provider = facts.name
    mode = "live" if livemode else "test"
    if credentials is None:
        raise InvalidRequest(
            f"A {provider} account needs credentials.secret_key.",
            param="credentials",
            code="parameter_missing",
        )
    prefixes = facts.key_prefixes(livemode)
    if not credentials.secret_key.startswith(prefixes):
        raise InvalidRequest(
            f"A {mode}-mode {provider} account takes a {mode} secret key starting with "
            f"{' or '.join(prefixes)}.",
            param="credentials.secret_key",
            code="credentials_invalid",
        )
    hook = credentials.webhook_secret
    prefix = facts.webhook_key_prefix
    if hook is not None and prefix is not None and not hook.startswith(prefix):
        raise InvalidRequest(
            f"A {facts.display_name} webhook secret starts with {prefix}.",
            param="credentials.webhook_secret",
            code="credentials_invalid",
        )
    if hook is not None and facts.webhook_key_refusal is not None:
        raise InvalidRequest(facts.webhook_key_refusal, param="credentials.webhook_secret")
    return {"secret_key": credentials.secret_key, "webhook_secret": hook}


def _sealed(
    keys: KeyRing, account_id: str, credentials: dict[str, str | None]
) -> SealedCredentials:
    secret = credentials.get("secret_key") or ""
    hook = credentials.get("webhook_secret")
    return SealedCredentials(
        credentials=keys.encrypt(json.dumps(credentials), context=account_id),
        secret_key_last4=secret[-4:] if secret else "",
        webhook_secret_last4=hook[-4:] if hook else None,
    )


def _check_currencies(facts: ProviderFacts, requested: list[str] | None) -> list[str]:
    supported = facts.currencies
    if requested is None:
        return sorted(supported)
    codes = []
    for code in requested:
        try:
            currency = get_currency(code)
        except UnsupportedCurrency as error:
            raise UnsupportedCurrency(error.message, param="currencies") from None
        if currency.code not in supported:
            raise InvalidRequest(
                f"{facts.name} does not process {currency.code}; it takes "
                f"{', '.join(sorted(supported))}.",
                param="currencies",
                code="currency_not_supported",
            )
        if currency.code not in codes:
            codes.append(currency.code)
    return codes


def _check_api_base(livemode: bool, api_base: str | None) -> str | None:
    if api_base is None:
        return None
    if livemode:
        raise InvalidRequest(
            "api_base is for pointing test-mode accounts at a local fake; live accounts "
            "always use the provider's own API.",
            param="api_base",
        )
    parts = urlsplit(api_base)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise InvalidRequest("api_base must be an http(s) URL.", param="api_base")
    return api_base.rstrip("/")
