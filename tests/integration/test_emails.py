"""Emails to customers (issue 14 §5, §8) over HTTP, with the real worker and outbox relay and
a real SMTP server in-process (``aiosmtpd``): each kind is received exactly once, as
multipart text and HTML; a kind turned off sends nothing; without PAYGRID_SMTP_URL emails
are recorded and not sent; and a ``paygrid worker`` killed with SIGKILL in the middle of
an SMTP conversation sends the email exactly once after it is restarted."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import parseaddr
from typing import Any

import asyncpg
import pytest
from aiosmtpd.controller import Controller
from pydantic import SecretStr

from paygrid.bootstrap import build_deps, standard_registry
from paygrid.config import Settings
from paygrid.dependencies import Deps
from paygrid.domain.emails import QUEUE
from paygrid.services.billing.subscriptions.schedule import STEP
from paygrid.services.customers import erase_customer
from paygrid.services.emails import card_expiry, prepare
from paygrid.services.merchants import NewMerchant
from paygrid.webhooks.dispatcher import EventDispatcher
from paygrid.worker.runner import Worker, WorkerConfig
from tests.conftest import Api, card
from tests.integration.test_dashboard import Login
from tests.integration.test_dashboard import login as login
from tests.integration.test_dashboard import new_client as new_client
from tests.integration.test_subscriptions import T0, monthly_price, ok, subscribe
from tests.integration.test_test_clocks import create_clock, unix, until_ready
from tests.integration.worker_harness import eventually

FINAL = ("sent", "failed", "recorded", "skipped")


class Mailbox:
    """An aiosmtpd handler that keeps every message it accepted. With ``stall_for`` set, a
    message to that address waits after its DATA until ``release`` is set, and is kept only
    if its client is still connected then (it never got a ``250``, so it was not
    accepted): a server that commits a message only once it can say so."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.stall_for: str | None = None
        self.stalled = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.stall_for is not None and self.stall_for in envelope.rcpt_tos:
            self.stalled.set()
            while not self.release.is_set():  # noqa: ASYNC110 - a thread sets it
                await asyncio.sleep(0.02)
            transport = server.transport
            if transport is None or transport.is_closing():
                return "451 connection lost before the message was accepted"
        message = message_from_bytes(envelope.content, policy=default_policy)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if parseaddr(str(m["To"]))[1] == address]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, str]]:
    """A running SMTP server and its URL."""
    box, port = Mailbox(), _free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, f"smtp://127.0.0.1:{port}"
    finally:
        box.release.set()
        controller.stop()


@pytest.fixture
async def mail_deps(
    pool: asyncpg.Pool,
    bookkeeping_pool: asyncpg.Pool,
    settings: Settings,
    mailbox: tuple[Mailbox, str],
) -> AsyncIterator[Deps]:
    """The worker's dependencies with PAYGRID_SMTP_URL pointing at the mailbox."""
    configured = settings.model_copy(update={"smtp_url": SecretStr(mailbox[1])})
    built = build_deps(pool, configured, bookkeeping_pool=bookkeeping_pool)
    yield built
    await built.connectors.aclose()


@asynccontextmanager
async def mail_worker(deps: Deps) -> AsyncIterator[None]:
    """The outbox relay and a worker on the billing and emails queues, as ``paygrid
    worker`` runs them (test clocks advance with the renewals and card expiry steps)."""
    registry = standard_registry(clock_steps=(STEP, card_expiry.STEP))
    config = WorkerConfig(
        queues=("billing", QUEUE), poll_seconds=0.05, lease_seconds=5.0, shutdown_seconds=1.0
    )
    worker = Worker(deps, registry, config)
    stopping = asyncio.Event()
    relay = asyncio.create_task(EventDispatcher(deps, poll_seconds=0.05).run(stopping))
    await worker.start()
    try:
        yield
    finally:
        stopping.set()
        await relay
        await worker.stop()


def address() -> str:
    return f"ada+{uuid.uuid4().hex[:10]}@example.com"


async def customer_with_email(api: Api, email: str, **fields: Any) -> str:
    return str(ok(await api.post("/v1/customers", {"email": email, "name": "Ada", **fields}))["id"])


async def open_invoice(api: Api, customer: str, amount: int = 2500, **fields: Any) -> str:
    body = {"customer": customer, "amount": amount, "currency": "USD", "description": "Plan"}
    ok(await api.post("/v1/invoiceitems", body))
    invoice = ok(await api.post("/v1/invoices", {"customer": customer, **fields}))
    ok(await api.post(f"/v1/invoices/{invoice['id']}/finalize"))
    return str(invoice["id"])


async def emails_of(pool: asyncpg.Pool, customer: str) -> list[asyncpg.Record]:
    return list(
        await pool.fetch("SELECT * FROM emails WHERE customer_id = $1 ORDER BY id", customer)
    )


async def settle(pool: asyncpg.Pool, customer: str, kinds: set[str]) -> dict[str, asyncpg.Record]:
    """The customer's emails once one of each of ``kinds`` is in a final status."""
    found: dict[str, asyncpg.Record] = {}

    async def done() -> bool:
        found.clear()
        found.update({r["kind"]: r for r in await emails_of(pool, customer)})
        return kinds <= set(found) and all(found[k]["status"] in FINAL for k in kinds)

    await eventually(done, deadline=30)
    return found


def parts(message: EmailMessage) -> dict[str, str]:
    """The text and HTML parts of a ``multipart/alternative`` message."""
    assert message.get_content_type() == "multipart/alternative"
    found = {}
    for part in message.iter_parts():
        assert isinstance(part, EmailMessage)
        found[part.get_content_type()] = str(part.get_content())
    assert set(found) == {"text/plain", "text/html"}
    return found


async def test_invoice_and_receipt_arrive_once_as_text_and_html(
    api: Api, mail_deps: Deps, pool: asyncpg.Pool, merchant: NewMerchant, mailbox: Any
) -> None:
    box, _ = mailbox
    to = address()
    customer = await customer_with_email(api, to)
    async with mail_worker(mail_deps):
        invoice = await open_invoice(
            api, customer, collection_method="send_invoice", days_until_due=14
        )
        ok(await api.post(f"/v1/invoices/{invoice}/pay", {"payment_method": "pm_card_visa"}))
        found = await settle(pool, customer, {"invoice", "receipt"})
        # Preparing the same events again (a re-run job) records and sends nothing more.
        for event_id in [r["event_id"] for r in found.values()]:
            await prepare.prepare(mail_deps, event_id)
        await asyncio.sleep(0.3)
    assert {k: r["status"] for k, r in found.items()} == {"invoice": "sent", "receipt": "sent"}
    assert len(await emails_of(pool, customer)) == 2
    received = box.to(to)
    assert sorted(str(m["Message-ID"]) for m in received) == sorted(
        r["message_id"] for r in found.values()
    )
    by_subject = {str(m["Subject"]): m for m in received}
    invoice_object = ok(await api.get(f"/v1/invoices/{invoice}"))
    number, hosted = invoice_object["number"], invoice_object["hosted_invoice_url"]
    billed = by_subject[f"Invoice {number} from {merchant.name}"]
    receipt = by_subject[f"Your receipt from {merchant.name}"]
    assert parseaddr(str(billed["From"]))[0] == merchant.name
    text, html = parts(billed)["text/plain"], parts(billed)["text/html"]
    assert "$25.00" in text and "$25.00" in html and "<table" in html and "<" not in text
    assert hosted and f"Pay this invoice: {hosted}" in text and f'href="{hosted}"' in html
    assert "$25.00" in parts(receipt)["text/plain"]


async def test_a_declined_payment_sends_one_failure_and_no_invoice_email(
    api: Api, mail_deps: Deps, pool: asyncpg.Pool, mailbox: Any
) -> None:
    box, _ = mailbox
    to = address()
    customer = await customer_with_email(api, to)
    async with mail_worker(mail_deps):
        invoice = await open_invoice(api, customer, 3000)  # charge_automatically: no invoice email
        declined = await api.post(
            f"/v1/invoices/{invoice}/pay", {"payment_method": "pm_card_chargeDeclined"}
        )
        assert declined.status_code == 402
        found = await settle(pool, customer, {"payment_failed"})
        await asyncio.sleep(0.3)
    assert set(found) == {"payment_failed"} and found["payment_failed"]["status"] == "sent"
    (message,) = box.to(to)
    assert str(message["Subject"]).startswith("Payment failed for invoice")
    assert "$30.00" in parts(message)["text/plain"]


async def test_a_renewal_that_needs_authentication_sends_one_action_required(
    api: Api, mail_deps: Deps, pool: asyncpg.Pool, mailbox: Any
) -> None:
    box, _ = mailbox
    to = address()
    price = await monthly_price(api)
    clock = await create_clock(api, T0)
    customer = await customer_with_email(api, to, test_clock=clock["id"])
    # The first invoice is paid on session; the renewal is charged off session to a card
    # that always asks for 3-D Secure.
    first = ok(
        await api.post("/v1/payment_methods", {"customer": customer, **card("4242424242424242")})
    )
    ok(
        await api.post(
            f"/v1/customers/{customer}",
            {"invoice_settings": {"default_payment_method": first["id"]}},
        )
    )
    sub = await subscribe(api, customer, price)
    asking = ok(
        await api.post("/v1/payment_methods", {"customer": customer, **card("4000002760003184")})
    )
    ok(
        await api.post(
            f"/v1/customers/{customer}",
            {"invoice_settings": {"default_payment_method": asking["id"]}},
        )
    )
    async with mail_worker(mail_deps):
        ok(
            await api.post(
                f"/v1/test_clocks/{clock['id']}/advance",
                {"frozen_time": unix(T0 + timedelta(days=32))},
            )
        )
        await until_ready(api, clock["id"])
        found = await settle(pool, customer, {"receipt", "action_required"})
        await asyncio.sleep(0.3)
    renewal = ok(await api.get(f"/v1/subscriptions/{sub['id']}"))["latest_invoice"]
    assert found["action_required"]["object_id"] == renewal
    assert found["action_required"]["status"] == "sent"
    # The attempt waits for the customer: no payment_failed email goes with it.
    assert sorted(r["kind"] for r in await emails_of(pool, customer)) == [
        "action_required",
        "receipt",
    ]
    asked = [m for m in box.to(to) if str(m["Subject"]).startswith("Confirm your payment")]
    assert len(asked) == 1 and len(box.to(to)) == 2
    hosted = ok(await api.get(f"/v1/invoices/{renewal}"))["hosted_invoice_url"]
    assert hosted and f"Confirm your payment: {hosted}" in parts(asked[0])["text/plain"]


async def test_a_card_expiry_notice_on_a_test_clock_goes_out_once(
    api: Api, mail_deps: Deps, pool: asyncpg.Pool, mailbox: Any
) -> None:
    box, _ = mailbox
    to = address()
    clock = await create_clock(api, T0)  # 2030-01-01
    customer = await customer_with_email(api, to, test_clock=clock["id"])
    method = ok(
        await api.post(
            "/v1/payment_methods",
            {"customer": customer, **card("4242424242424242", exp_month=3, exp_year=2030)},
        )
    )
    ok(
        await api.post(
            f"/v1/customers/{customer}",
            {"invoice_settings": {"default_payment_method": method["id"]}},
        )
    )
    async with mail_worker(mail_deps):
        for day in (20, 70, 85):  # before the notice, after it, and after it again
            target = T0 + timedelta(days=day)
            ok(
                await api.post(
                    f"/v1/test_clocks/{clock['id']}/advance", {"frozen_time": unix(target)}
                )
            )
            await until_ready(api, clock["id"])
            if day == 20:
                assert await emails_of(pool, customer) == []
        found = await settle(pool, customer, {"card_expiring"})
        await asyncio.sleep(0.3)
    notice = found["card_expiring"]
    # 30 days before the end of March 2030, on the clock's time.
    assert notice["created_at"] == datetime(2030, 4, 1, tzinfo=UTC) - timedelta(days=30)
    assert (notice["object_id"], notice["reason_key"]) == (method["id"], "expires:2030-03")
    assert len(await emails_of(pool, customer)) == 1
    (message,) = box.to(to)
    assert "ending in 4242 expires at the end of March 2030" in parts(message)["text/plain"]


async def test_a_kind_turned_off_sends_nothing_and_the_others_still_go(
    api: Api, mail_deps: Deps, pool: asyncpg.Pool, mailbox: Any
) -> None:
    box, _ = mailbox
    to = address()
    ok(await api.post("/v1/billing_settings", {"emails": {"invoice": False}}))
    customer = await customer_with_email(api, to)
    async with mail_worker(mail_deps):
        invoice = await open_invoice(
            api, customer, collection_method="send_invoice", days_until_due=7
        )
        ok(await api.post(f"/v1/invoices/{invoice}/pay", {"payment_method": "pm_card_visa"}))
        found = await settle(pool, customer, {"invoice", "receipt"})
        await asyncio.sleep(0.3)
    assert (found["invoice"]["status"], found["receipt"]["status"]) == ("skipped", "sent")
    assert [str(m["Subject"]).startswith("Your receipt") for m in box.to(to)] == [True]


async def test_without_an_smtp_url_emails_are_recorded_and_shown_not_sent(
    api: Api, deps: Deps, pool: asyncpg.Pool, mailbox: Any, login: Login, merchant: NewMerchant
) -> None:
    box, _ = mailbox
    to = address()
    assert deps.settings.smtp_url is None
    customer = await customer_with_email(api, to)
    async with mail_worker(deps):
        invoice = await open_invoice(
            api, customer, collection_method="send_invoice", days_until_due=7
        )
        found = await settle(pool, customer, {"invoice"})
        await asyncio.sleep(0.3)
    assert found["invoice"]["status"] == "recorded" and found["invoice"]["attempts"] == 0
    assert box.to(to) == []
    jobs = await pool.fetchval(
        "SELECT count(*) FROM jobs WHERE kind = 'emails.send' AND payload->>'email' = $1",
        found["invoice"]["id"],
    )
    assert jobs == 0
    http, _ = await login("admin")
    page = await http.get("/dashboard/emails")
    assert page.status_code == 200
    assert 'href="/dashboard/emails"' in page.text
    assert to in page.text and f'href="/dashboard/invoices/{invoice}"' in page.text
    assert "Recorded" in page.text
    filtered = await http.get("/dashboard/emails", params={"status": "sent"})
    assert filtered.status_code == 200 and to not in filtered.text
    # GDPR erasure leaves the log's kind, object and status, not the address or the bodies.
    await erase_customer(pool, merchant.id, customer, "cli:dpo", now=deps.clock.now())
    (erased,) = await emails_of(pool, customer)
    assert (erased["recipient"], erased["text_body"], erased["html_body"]) == ("[erased]", "", "")
    assert (erased["kind"], erased["status"]) == ("invoice", "recorded")


def _start_worker(database_url: str, smtp_url: str) -> subprocess.Popen[bytes]:
    environment = {
        **os.environ,
        "PAYGRID_DATABASE_URL": database_url,
        "PAYGRID_LOG_LEVEL": "WARNING",
        "PAYGRID_WORKER_LEASE_SECONDS": "2",
        "PAYGRID_WORKER_POLL_SECONDS": "0.2",
        "PAYGRID_SMTP_URL": smtp_url,
        "PAYGRID_SMTP_TIMEOUT_SECONDS": "60",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "paygrid.cli", "worker"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.slow
async def test_a_worker_killed_mid_send_sends_the_email_exactly_once_after_restart(
    api: Api, database_url: str, pool: asyncpg.Pool, mailbox: Any
) -> None:
    box, smtp_url = mailbox
    to = address()
    box.stall_for = to
    customer = await customer_with_email(api, to)
    await open_invoice(api, customer, collection_method="send_invoice", days_until_due=7)
    first = _start_worker(database_url, smtp_url)
    try:
        # The server holds the message after its DATA, before answering: kill then.
        await eventually(lambda: asyncio.to_thread(box.stalled.wait, 0.1), deadline=60)
        (record,) = await emails_of(pool, customer)
        assert (record["status"], record["attempts"]) == ("sending", 1)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    box.release.set()  # the server finds its client gone and keeps nothing
    await asyncio.sleep(0.3)
    assert box.to(to) == []
    (record,) = await emails_of(pool, customer)
    assert record["status"] == "sending"  # the killed worker never learnt what happened
    second = _start_worker(database_url, smtp_url)
    try:
        found = await settle(pool, customer, {"invoice"})
        await asyncio.sleep(0.5)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
    assert (found["invoice"]["status"], found["invoice"]["attempts"]) == ("sent", 2)
    (message,) = box.to(to)  # exactly once, with the Message-ID recorded at first
    assert str(message["Message-ID"]) == record["message_id"]
