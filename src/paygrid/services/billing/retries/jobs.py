"""When dunning's work runs: on the worker, as jobs of the ``billing`` queue.

- Customers on the system clock: the periodic ``dunning.retries`` job, every minute, runs
  the due retries and the expired authentications (at most ``BATCH`` per run, earliest
  first).
- Customers on a test clock: ``STEP``, the advance's ``ClockAdvanceStep``: the walk stops
  at every due retry and expiry of the clock's customers, in order, like renewals.
- ``dunning.method_updated`` (enqueued with the change of a customer's default method):
  the customer's open failed invoices are retried at once, in the next worker cycle.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from paygrid.db import dunning as dunning_db
from paygrid.dependencies import Deps
from paygrid.domain.dunning import METHOD_UPDATED_JOB
from paygrid.services.billing.retries.action_expiry import expire_if_due
from paygrid.services.billing.retries.retry_invoice import Because, retry_invoice
from paygrid.worker.registry import JobContext

RETRIES: Final = "dunning.retries"
METHOD_UPDATED: Final = METHOD_UPDATED_JOB
BATCH: Final = 500


async def run_due(deps: Deps, invoice_id: str) -> None:
    """What is due for the invoice at its customer's now: an awaited authentication that
    expired, then the schedule's retry."""
    await expire_if_due(deps, invoice_id)
    await retry_invoice(deps, invoice_id, because=Because.SCHEDULE)


class DunningStep:
    """The test clock advance's step for dunning (``ClockAdvanceStep``)."""

    name = "dunning.retries"

    async def next_due(self, deps: Deps, clock_id: str) -> datetime | None:
        return await dunning_db.next_due_on_clock(deps.pool, clock_id)

    async def run_until(self, deps: Deps, clock_id: str, moment: datetime) -> None:
        for invoice_id in await dunning_db.due_on_clock(deps.pool, clock_id, moment):
            await run_due(deps, invoice_id)


STEP: Final = DunningStep()


async def retries_job(_payload: dict[str, Any], context: JobContext) -> None:
    """Periodic: the due work of customers on the system clock."""
    deps = context.deps
    for invoice_id in await dunning_db.due_on_system_clock(deps.pool, deps.clock.now(), BATCH):
        await run_due(deps, invoice_id)


async def method_updated_job(payload: dict[str, Any], context: JobContext) -> None:
    """Retry the customer's open failed invoices with its new default method, if its
    merchant's ``retry_on_method_update`` is on (read by ``retry_invoice``)."""
    customer_id = str(payload["customer"])
    for invoice_id in await dunning_db.open_attempted_of_customer(context.deps.pool, customer_id):
        await retry_invoice(context.deps, invoice_id, because=Because.METHOD_UPDATE)
