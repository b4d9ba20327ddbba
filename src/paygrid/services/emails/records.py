"""Recording an email in the send log: rendered once, unique by its occasion, and queued
for the ``emails.send`` job in the same transaction when it is to be sent."""

from __future__ import annotations

from datetime import datetime
from email.utils import formataddr
from typing import Any

import structlog

from paygrid.db import emails as emails_db
from paygrid.db import jobs as jobs_db
from paygrid.db import merchants as merchants_db
from paygrid.db.emails import EmailRow
from paygrid.db.executor import Connection
from paygrid.dependencies import Deps
from paygrid.domain import emails as domain
from paygrid.domain.emails import EmailOccasion, EmailStatus
from paygrid.ids import new_ordered_id
from paygrid.services.billing.settings import load_settings
from paygrid.services.context import Tenant
from paygrid.services.emails.rendering import render

log = structlog.get_logger("paygrid.emails")
MAX_RECIPIENT_CHARS = 512


def usable_address(address: object) -> str | None:
    """``address`` if it can be a recipient (one address, no header injection), else None."""
    if not isinstance(address, str):
        return None
    address = address.strip()
    if (
        not 3 <= len(address) <= MAX_RECIPIENT_CHARS
        or address.count("@") != 1
        or any(c in address for c in '\r\n<>,;"')
        or any(c.isspace() for c in address)
    ):
        return None
    return address


async def record(
    conn: Connection,
    deps: Deps,
    tenant: Tenant,
    occasion: EmailOccasion,
    *,
    recipient: str,
    customer_id: str | None,
    event_id: str | None,
    facts: dict[str, Any],
    created_at: datetime,
) -> EmailRow | None:
    """Record the email of ``occasion`` to ``recipient`` in the caller's transaction; None
    when it was recorded before. ``queued`` (with its send job) when SMTP is configured,
    ``recorded`` when not, ``skipped`` when the merchant turned its kind off."""
    settings = await load_settings(deps, tenant, conn)
    enabled: bool = getattr(settings.emails, occasion.kind.value)
    name = await merchants_db.merchant_name(conn, tenant.merchant_id)
    merchant = " ".join((name or "").split()) or "paygrid"  # one line: it is in headers
    rendered = render(occasion.kind, merchant, facts)
    if not enabled:
        status = EmailStatus.SKIPPED
    elif deps.settings.smtp_url is None:
        status = EmailStatus.RECORDED
    else:
        status = EmailStatus.QUEUED
    email_id = new_ordered_id("eml")
    sender_address = deps.settings.email_from
    row = EmailRow(
        id=email_id,
        merchant_id=tenant.merchant_id,
        livemode=tenant.livemode,
        kind=occasion.kind,
        object_id=occasion.object_id,
        reason_key=occasion.reason_key,
        customer_id=customer_id,
        event_id=event_id,
        recipient=recipient,
        sender=formataddr((merchant, sender_address)),
        subject=rendered.subject,
        text_body=rendered.text,
        html_body=rendered.html,
        message_id=domain.message_id(email_id, sender_address.rpartition("@")[2] or "paygrid"),
        status=status,
        attempts=0,
        last_error=None,
        sent_at=None,
        created_at=created_at,
        updated_at=created_at,
    )
    inserted = await emails_db.insert_email(conn, row)
    if inserted is None:
        return None
    if inserted.status is EmailStatus.QUEUED:
        await jobs_db.enqueue(
            conn,
            domain.SEND,
            {"email": inserted.id},
            queue=domain.QUEUE,
            unique_key=f"{domain.SEND}:{inserted.id}",
        )
    log.info("email.recorded", email=inserted.id, kind=inserted.kind.value, status=status.value)
    return inserted
