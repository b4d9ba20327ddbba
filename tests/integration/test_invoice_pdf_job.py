"""Invoice PDFs stored just after finalize (issue 14 §3): every finalize enqueues one
``invoices.render_pdfs`` job in its transaction (one per renewal batch); the worker stores
the PDF before any download, and the download serves those very bytes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
import httpx

from paygrid.bootstrap import QUEUES, standard_registry
from paygrid.dependencies import Deps
from paygrid.services.billing import hosted_invoice_pdfs
from paygrid.services.billing.subscriptions.schedule import STEP
from tests.conftest import Api
from tests.integration.test_hosted_invoices import open_invoice, page_path, pdf_text
from tests.integration.test_subscriptions import (
    T0,
    clock_customer,
    invoices_of,
    monthly_price,
    subscribe,
)
from tests.integration.test_subscriptions import move as move_clock
from tests.integration.test_test_clocks import billing_worker
from tests.integration.worker_harness import eventually, running


async def render_jobs(pool: asyncpg.Pool, invoice_id: str) -> list[asyncpg.Record]:
    return list(
        await pool.fetch(
            "SELECT queue, status, payload FROM jobs WHERE kind = $1 AND payload->'invoices' ? $2",
            hosted_invoice_pdfs.RENDER_PDFS,
            invoice_id,
        )
    )


async def stored(pool: asyncpg.Pool, invoice_id: str) -> bytes | None:
    value = await pool.fetchval("SELECT pdf FROM hosted_invoices WHERE invoice_id = $1", invoice_id)
    return None if value is None else bytes(value)


async def stored_by_worker(deps: Deps, invoice_id: str) -> bytes:
    async with running(deps, standard_registry(), hosted_invoice_pdfs.QUEUE):

        async def done() -> bool:
            return await stored(deps.pool, invoice_id) is not None

        await eventually(done)
    pdf = await stored(deps.pool, invoice_id)
    assert pdf is not None
    return pdf


async def test_finalize_enqueues_the_pdf_and_the_worker_stores_it_before_any_download(
    api: Api, client: httpx.AsyncClient, deps: Deps
) -> None:
    assert hosted_invoice_pdfs.QUEUE in QUEUES  # `paygrid worker` and `serve` work it
    invoice = await open_invoice(api, name="Grace Hopper")
    jobs = await render_jobs(deps.pool, invoice["id"])
    assert [(j["queue"], j["status"]) for j in jobs] == [(hosted_invoice_pdfs.QUEUE, "queued")]
    assert await stored(deps.pool, invoice["id"]) is None
    pdf = await stored_by_worker(deps, invoice["id"])
    assert invoice["number"] in pdf_text(pdf) and "Grace Hopper" in pdf_text(pdf)
    # Renamed after finalize: the download is still the bytes stored by the job.
    ok_rename = await api.post(f"/v1/customers/{invoice['customer']}", {"name": "Someone"})
    assert ok_rename.status_code == 200
    download = await client.get(f"{page_path(invoice)}/pdf")
    assert download.status_code == 200 and download.content == pdf


async def test_the_job_keeps_a_pdf_a_download_stored_first(
    api: Api, client: httpx.AsyncClient, deps: Deps
) -> None:
    invoice = await open_invoice(api)
    first = (await client.get(f"{page_path(invoice)}/pdf")).content
    await hosted_invoice_pdfs.render_pdfs(deps, [invoice["id"]], lambda _page: b"other")
    assert await stored(deps.pool, invoice["id"]) == first


async def test_a_renewal_batch_enqueues_one_job_for_its_invoices(
    api: Api, client: httpx.AsyncClient, deps: Deps
) -> None:
    price = await monthly_price(api)
    clock, customer = await clock_customer(api, T0)
    await subscribe(api, customer, price)
    async with billing_worker(deps, STEP):
        await move_clock(api, clock, T0 + timedelta(days=32))
    renewed: list[dict[str, Any]] = [
        i for i in await invoices_of(api, customer) if i["billing_reason"] == "subscription_cycle"
    ]
    assert len(renewed) == 1
    assert len(await render_jobs(deps.pool, renewed[0]["id"])) == 1
    pdf = await stored_by_worker(deps, renewed[0]["id"])
    assert (await client.get(f"{page_path(renewed[0])}/pdf")).content == pdf
