"""Customer billing portal sessions: made over the API for one customer, then entered by the
customer's browser through the link (issue 14 §4, docs/billing.md "Customer billing portal").

The link's token is shown once (in ``url``) and stored only as its hash. The first browser
to open the link within ``LINK_LIFETIME`` is given a cookie secret (its hash is stored too)
and keeps the portal for ``SESSION_LIFETIME``; every later request must carry that cookie."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from paygrid.db import billing_portal_sessions as portal_db
from paygrid.db.billing_portal_sessions import PortalSessionRow
from paygrid.dependencies import Deps
from paygrid.domain import billing_portal as domain
from paygrid.domain.billing_portal import PortalSessionState
from paygrid.domain.errors import InvalidRequest, ResourceMissing
from paygrid.domain.url_safety import check_redirect_url
from paygrid.ids import new_id
from paygrid.schemas.billing_portal import BillingPortalSession, BillingPortalSessionCreate
from paygrid.services import payment_methods
from paygrid.services.audit_actor import act_as_portal_session
from paygrid.services.context import Tenant

PORTAL_PATH = "/p"


class Entry(StrEnum):
    """What a browser gets when it comes with a portal link."""

    ACTIVE = "active"  # the portal (``access`` says whose)
    MISSING = "missing"  # no such link
    EXPIRED = "expired"  # not opened in time, or its hour is over
    FOREIGN = "foreign"  # opened already, by another browser


@dataclass(frozen=True, slots=True)
class PortalAccess:
    """An active session, as the portal's pages and actions use it."""

    session_id: str
    tenant: Tenant
    customer_id: str
    csrf_token: str
    return_url: str | None
    ends_at: datetime


@dataclass(frozen=True, slots=True)
class Entered:
    entry: Entry
    access: PortalAccess | None = None
    return_url: str | None = None  # where an expired page may send the customer
    new_browser_secret: str | None = None  # the cookie to set: the link was just opened


async def create_portal_session(
    deps: Deps, tenant: Tenant, params: BillingPortalSessionCreate
) -> BillingPortalSession:
    """A portal link for one of the tenant's customers (404 for anyone else's)."""
    if params.return_url is not None:
        check_redirect_url(params.return_url, livemode=tenant.livemode, param="return_url")
    try:
        customer = await payment_methods.require_customer(deps.pool, tenant, params.customer)
    except InvalidRequest:
        raise ResourceMissing(f"No such customer: '{params.customer}'", param="customer") from None
    token, now = domain.new_secret(), deps.clock.now()
    row = PortalSessionRow(
        id=new_id("bps"),
        merchant_id=tenant.merchant_id,
        livemode=tenant.livemode,
        customer_id=customer.id,
        return_url=params.return_url,
        token_hash=domain.digest(token),
        csrf_token=domain.new_secret(),
        browser_hash=None,
        created_at=now,
        expires_at=now + domain.LINK_LIFETIME,
        opened_at=None,
        ends_at=None,
    )
    stored = await portal_db.insert(deps.pool, row)
    url = f"{deps.settings.base_url()}{PORTAL_PATH}/{token}"
    return BillingPortalSession.from_row(stored, url)


async def enter(deps: Deps, token: str, browser_secret: str | None, *, may_open: bool) -> Entered:
    """The session a browser comes to with ``token`` (and its cookie, if any). With
    ``may_open`` (a page view, never a form post), an unopened link is opened and bound to
    this browser. An active session names its customer as the actor of what follows."""
    row = await portal_db.get_by_token_hash(deps.pool, domain.digest(token))
    if row is None:
        return Entered(Entry.MISSING)
    now = deps.clock.now()
    state = _state(row, now)
    secret = None
    if state is PortalSessionState.UNOPENED and may_open:
        secret = domain.new_secret()
        opened = await portal_db.mark_opened(
            deps.pool, row.id, domain.digest(secret), now, now + domain.SESSION_LIFETIME
        )
        if opened is None:  # another request opened it first, or it just expired
            secret = None
            opened = await portal_db.get_by_token_hash(deps.pool, row.token_hash)
            assert opened is not None
        row, state = opened, _state(opened, now)
        browser_secret = secret or browser_secret
    if state is PortalSessionState.EXPIRED:
        return Entered(Entry.EXPIRED, return_url=row.return_url)
    if state is PortalSessionState.UNOPENED or not domain.matches(browser_secret, row.browser_hash):
        return Entered(Entry.FOREIGN, return_url=row.return_url)
    act_as_portal_session(row.id)
    assert row.ends_at is not None
    access = PortalAccess(
        session_id=row.id,
        tenant=Tenant(row.merchant_id, row.livemode),
        customer_id=row.customer_id,
        csrf_token=row.csrf_token,
        return_url=row.return_url,
        ends_at=row.ends_at,
    )
    return Entered(Entry.ACTIVE, access, row.return_url, secret)


def _state(row: PortalSessionRow, now: datetime) -> PortalSessionState:
    return domain.state_at(
        now, expires_at=row.expires_at, opened_at=row.opened_at, ends_at=row.ends_at
    )
