"""An invoice's PDF, stored once, in ``hosted_invoices.pdf``: rendered from the invoice as
finalized (``hosted_invoice_pages``' view model: the snapshot of merchant and customer,
and the number, dates, lines and totals, which never change after finalize) by the
``invoices.render_pdfs`` job that every finalize enqueues in its transaction (one job per
finalize or renewal batch, on the ``documents`` queue, so a batch's rendering never holds
its transaction). A download before that job ran renders it itself. Whoever stores first
wins: every download serves those bytes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from paygrid.db import hosted_invoices as hosted_db
from paygrid.dependencies import Deps
from paygrid.services.billing.hosted_invoice_pages import InvoicePage, page_of_invoice

RENDER_PDFS: Final = "invoices.render_pdfs"
QUEUE: Final = "documents"


async def pdf_of(deps: Deps, page: InvoicePage, render: Callable[[InvoicePage], bytes]) -> bytes:
    """The invoice's stored PDF; the first download renders it with ``render``."""
    stored = await hosted_db.stored_pdf(deps.pool, page.invoice_id)
    if stored is not None:
        return stored
    rendered = render(page)
    return await hosted_db.store_pdf(deps.pool, page.invoice_id, rendered, deps.clock.now())


async def render_pdfs(
    deps: Deps, invoice_ids: Sequence[str], render: Callable[[InvoicePage], bytes]
) -> None:
    """The job: store the PDF of each invoice just finalized that has none yet."""
    for invoice_id in invoice_ids:
        if await hosted_db.stored_pdf(deps.pool, invoice_id) is not None:
            continue
        page = await page_of_invoice(deps, invoice_id)
        if page is not None:
            await hosted_db.store_pdf(deps.pool, invoice_id, render(page), deps.clock.now())
