"""A customer's new default method retries its open failed invoices (dunning's
``retry_on_method_update``): the change enqueues ``dunning.method_updated`` in its own
transaction, so the retry happens in the next worker cycle if, and only if, the change
commits; the job reads the merchant's setting. The API's customer update calls this, and so
must every other way of setting ``invoice_settings.default_payment_method`` (the billing
portal, the hosted invoice page). Outside ``services/billing``, which imports the customer
use cases."""

from __future__ import annotations

from paygrid.db import dunning as dunning_db
from paygrid.db import jobs as jobs_db
from paygrid.db.executor import Connection
from paygrid.domain.dunning import METHOD_UPDATED_JOB, METHOD_UPDATED_QUEUE


async def default_method_changed(conn: Connection, customer_id: str) -> None:
    """Call in the transaction that set the customer's new default method."""
    if not await dunning_db.open_attempted_of_customer(conn, customer_id):
        return  # nothing to retry
    await jobs_db.enqueue(
        conn, METHOD_UPDATED_JOB, {"customer": customer_id}, queue=METHOD_UPDATED_QUEUE
    )
