"""An invoice's PDF, stored once: rendered on its first download from the invoice as
finalized (``hosted_invoice_pages``' view model: the snapshot of merchant and customer,
and the number, dates, lines and totals, which never change after finalize), then kept in
``hosted_invoices.pdf``. Every later download serves those bytes; two first downloads at
once both serve the one stored first. Rendering at finalize instead would cost a renewal
batch of 10,000 invoices about 20 s inside its transaction (fpdf2 takes about 2 ms an
invoice), so it waits for the first download."""

from __future__ import annotations

from collections.abc import Callable

from paygrid.db import hosted_invoices as hosted_db
from paygrid.dependencies import Deps
from paygrid.services.billing.hosted_invoice_pages import InvoicePage


async def pdf_of(deps: Deps, page: InvoicePage, render: Callable[[InvoicePage], bytes]) -> bytes:
    """The invoice's stored PDF; the first download renders it with ``render``."""
    stored = await hosted_db.stored_pdf(deps.pool, page.invoice_id)
    if stored is not None:
        return stored
    rendered = render(page)
    return await hosted_db.store_pdf(deps.pool, page.invoice_id, rendered, deps.clock.now())
