"""The ``emails.prepare`` job: one committed outbox event in, at most one email recorded.

The outbox relay (``webhooks/dispatcher.py``) enqueues this job for each event of
``domain.emails.EMAIL_EVENTS`` in the transaction that marks the event dispatched, so every
committed event is considered exactly once, in no particular order and never missed; the
send log's ``UNIQUE (kind, object_id, reason_key)`` makes a re-run (a crash, a retry)
record nothing twice."""

from __future__ import annotations

from typing import Any, Final

import structlog

from paygrid.db import emails as emails_db
from paygrid.db import events as events_db
from paygrid.dependencies import Deps
from paygrid.domain.emails import EmailOccasion, occasion_for
from paygrid.services.context import Tenant
from paygrid.services.emails import records
from paygrid.services.emails.rendering import invoice_facts
from paygrid.worker.registry import JobContext
from paygrid.worker.retry import RetryPolicy

log = structlog.get_logger("paygrid.emails")
PREPARE_RETRY: Final = RetryPolicy((5.0, 30.0, 120.0, 600.0))


def payload(event_id: str) -> dict[str, Any]:
    return {"event": event_id}


async def job(job_payload: dict[str, Any], context: JobContext) -> None:
    """Record the email that the event calls for, if any."""
    await prepare(context.deps, str(job_payload["event"]))


async def prepare(deps: Deps, event_id: str) -> None:
    event = await events_db.get_event_by_id(deps.pool, event_id)
    if event is None:
        return
    snapshot: dict[str, Any] = event.data.get("object") or {}
    occasion = occasion_for(event.type, snapshot)
    if occasion is None:
        return
    recipient, customer_id = await _addressee(deps, occasion, snapshot)
    if recipient is None:
        log.info("email.no_recipient", kind=occasion.kind.value, object=occasion.object_id)
        return
    facts = invoice_facts(snapshot, deps.settings.base_url())
    async with deps.pool.acquire() as conn, conn.transaction():
        await records.record(
            conn,
            deps,
            Tenant(event.merchant_id, event.livemode),
            occasion,
            recipient=recipient,
            customer_id=customer_id,
            event_id=event.id,
            facts=facts,
            created_at=event.created_at,
        )


async def _addressee(
    deps: Deps, occasion: EmailOccasion, snapshot: dict[str, Any]
) -> tuple[str | None, str | None]:
    """Who gets it: the invoice's customer, at the email it has now."""
    del occasion
    customer = snapshot.get("customer")
    customer_id = customer if isinstance(customer, str) else None
    if customer_id is None:
        return None, None
    email = await emails_db.customer_email(deps.pool, customer_id)
    return records.usable_address(email), customer_id
