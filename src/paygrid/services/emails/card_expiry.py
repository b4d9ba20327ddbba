"""Card expiry notices: ``CARD_EXPIRY_NOTICE`` (30 days) before the end of the expiry
month of a customer's default card, once per method and expiry date.

- Customers on the system clock: the daily ``emails.card_expiry`` job.
- Customers on a test clock: ``STEP``, a ``ClockAdvanceStep``, so an advance across the
  notice's moment stops there and records it on the clock's time.

Each notice is recorded as every email is (``records.record``): its ``UNIQUE`` occasion
makes a second run record nothing, and a kind turned off is recorded ``skipped`` so the
same card is not considered again."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from paygrid.db import emails as emails_db
from paygrid.db.emails import ExpiringCard
from paygrid.dependencies import Deps
from paygrid.domain.emails import card_expiry_occasion
from paygrid.services.context import Tenant
from paygrid.services.emails import records
from paygrid.services.emails.rendering import card_facts
from paygrid.worker.registry import JobContext

BATCH: Final = 200


class CardExpiryStep:
    """The test clock advance's step for card expiry notices (``ClockAdvanceStep``)."""

    name = "emails.card_expiry"

    async def next_due(self, deps: Deps, clock_id: str) -> datetime | None:
        return await emails_db.next_card_notice_on_clock(deps.pool, clock_id)

    async def run_until(self, deps: Deps, clock_id: str, moment: datetime) -> None:
        for card in await emails_db.card_notices_on_clock(deps.pool, clock_id, moment):
            await notify(deps, card, moment)


STEP: Final = CardExpiryStep()


async def job(_payload: dict[str, Any], context: JobContext) -> None:
    """Periodic (daily): the notices due for customers on the system clock."""
    deps = context.deps
    while True:
        now = deps.clock.now()
        cards = await emails_db.card_notices_on_system_clock(deps.pool, now, BATCH)
        for card in cards:
            await notify(deps, card, now)
        if len(cards) < BATCH:
            return


async def notify(deps: Deps, card: ExpiringCard, moment: datetime) -> None:
    """Record the expiry notice of ``card`` (nothing if it was recorded before)."""
    recipient = records.usable_address(card.email)
    occasion = card_expiry_occasion(card.payment_method_id, card.exp_month, card.exp_year)
    if recipient is None:
        return
    async with deps.pool.acquire() as conn, conn.transaction():
        await records.record(
            conn,
            deps,
            Tenant(card.merchant_id, card.livemode),
            occasion,
            recipient=recipient,
            customer_id=card.customer_id,
            event_id=None,
            facts=card_facts(card.card_brand, card.card_last4, card.exp_month, card.exp_year),
            created_at=moment,
        )
