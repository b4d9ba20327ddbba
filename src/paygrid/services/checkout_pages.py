"""What the hosted checkout page reads: a session by its id alone (the customer's browser
carries no API key; the id is the capability) and the name of the merchant it pays."""

from __future__ import annotations

from paygrid.db import checkout_sessions as sessions_db
from paygrid.db import merchants as merchants_db
from paygrid.db import payment_link_sessions as link_sessions_db
from paygrid.db.checkout_sessions import CheckoutSessionRow
from paygrid.dependencies import Deps
from paygrid.services.checkout_sessions import expire_if_due


async def session_for_page(deps: Deps, session_id: str) -> CheckoutSessionRow | None:
    """The session to show, expired first if it is past its expiry time (sessions expire
    lazily, when next read); ``None`` if there is no such session, or if a payment link
    opened it (it is paid on the link's page, which takes the link's completion slot)."""
    session = await sessions_db.get_session_unscoped(deps.pool, session_id)
    if session is None or await link_sessions_db.session_of(deps.pool, session_id) is not None:
        return None
    return await expire_if_due(deps, session)


async def session_as_stored(deps: Deps, session_id: str) -> CheckoutSessionRow | None:
    """The session as it stands now, without expiring it (after a payment attempt, or back
    from a provider, where the outcome decides)."""
    return await sessions_db.get_session_unscoped(deps.pool, session_id)


async def merchant_name(deps: Deps, merchant_id: str) -> str:
    """The name the page shows the customer (a session's merchant always exists)."""
    name = await merchants_db.merchant_name(deps.pool, merchant_id)
    assert name is not None
    return name
