"""Who acts in the current request, as the audit log records it: the HTTP layers name the
actor once they know it (a dashboard user, a checkout session's customer), and every change
the request makes afterwards is audited as that actor's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from paygrid.db import audit as audit_db


def act_as_dashboard_user(user_id: str) -> None:
    """A signed-in dashboard user acts: audited as ``dashboard:<user id>``."""
    audit_db.set_actor(f"dashboard:{user_id}")


def act_as_checkout_customer(session_id: str) -> None:
    """The customer paying on a hosted checkout page: audited as ``checkout:<session id>``."""
    audit_db.set_actor(f"checkout:{session_id}")


def act_as_portal_session(session_id: str) -> None:
    """The customer in their billing portal: audited as ``billing_portal:<session id>``."""
    audit_db.set_actor(f"billing_portal:{session_id}")


def act_as_invoice_customer(invoice_id: str) -> None:
    """The customer paying on a hosted invoice page: audited as ``hosted_invoice:<invoice id>``
    (never the page's token, which is its credential)."""
    audit_db.set_actor(f"hosted_invoice:{invoice_id}")


def begin_request(request_id: str, ip: str | None) -> None:
    """An HTTP request starts (``request_id``, from ``ip``): nobody is known to act yet."""
    audit_db.begin_request(request_id, ip)


def act_as_api_key(key_id: str) -> None:
    """An authenticated API key acts: audited as ``api_key:<key id>``."""
    audit_db.set_actor(f"api_key:{key_id}")


@contextmanager
def acting_as_reconciliation_run(run_id: str) -> Iterator[None]:
    """A reconciliation run heals what it found: every change made inside is audited as
    ``reconciliation_run:<run id>``; who acted before is restored after."""
    previous = audit_db.current.get()
    audit_db.act_as(f"reconciliation_run:{run_id}")
    try:
        yield
    finally:
        audit_db.current.set(previous)
