"""The hosted invoice page's address, given to an invoice as it is finalized (every
finalize path calls this in its transaction): ``{public base url}/i/{token}``, with a token
of 192 random bits that is the page's only credential, and the snapshot of the merchant's
and customer's names the page and the PDF show from then on (``db.hosted_invoices``)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from paygrid.db import hosted_invoices as hosted_db
from paygrid.db import jobs as jobs_db
from paygrid.db.executor import Connection
from paygrid.services.billing.hosted_invoice_pdfs import QUEUE, RENDER_PDFS


@dataclass(frozen=True, slots=True)
class HostedLink:
    token: str
    url: str


def new_link(base_url: str) -> HostedLink:
    """A fresh page address under ``base_url`` (``settings.base_url()``)."""
    token = secrets.token_urlsafe(24)
    return HostedLink(token=token, url=f"{base_url}/i/{token}")


async def publish(conn: Connection, links: Mapping[str, HostedLink], now: datetime) -> None:
    """Record the pages of the invoices just finalized (invoice id → link), in the
    finalizing transaction, with the merchant and customer as they are now, and the job that
    renders and stores their PDFs (``hosted_invoice_pdfs``)."""
    tokens = {
        invoice_id: (link.token, secrets.token_urlsafe(24)) for invoice_id, link in links.items()
    }
    await hosted_db.record(conn, tokens, now)
    if tokens:  # their PDFs, rendered and stored by the worker once this commits
        await jobs_db.enqueue(conn, RENDER_PDFS, {"invoices": list(tokens)}, queue=QUEUE)
