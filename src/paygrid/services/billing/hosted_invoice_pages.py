"""What the hosted invoice page (``/i/{token}``) and the invoice's PDF show, read by the
page's token alone (the customer's browser carries no API key; the token is the
capability): one view model for both, so the PDF is the page's content on paper.

The merchant and customer are the snapshot taken at finalize (``db.hosted_invoices``);
number, dates, lines and totals never change after finalize. Only the status, what was
paid and the saved card are read live, for the page (the PDF leaves them out)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from babel.dates import format_date

from paygrid.db import customers as customers_db
from paygrid.db import hosted_invoices as hosted_db
from paygrid.db import invoices as invoices_db
from paygrid.db import payment_methods as pm_db
from paygrid.db.hosted_invoices import HostedInvoiceRow
from paygrid.db.invoices import InvoiceLineRow, InvoiceRow
from paygrid.dependencies import Deps
from paygrid.domain.invoices import InvoiceStatus
from paygrid.money import format_display, get_currency
from paygrid.services.context import Tenant


@dataclass(frozen=True, slots=True)
class PageLine:
    description: str
    period: str
    quantity: int
    amount: str


@dataclass(frozen=True, slots=True)
class SavedCard:
    payment_method: str
    label: str  # "Visa ending in 4242"


@dataclass(frozen=True, slots=True)
class InvoicePage:
    """One invoice as its page and PDF show it."""

    token: str
    form_token: str
    invoice_id: str
    merchant_id: str
    livemode: bool
    customer_id: str
    status: InvoiceStatus
    number: str
    currency: str
    merchant_name: str
    customer_name: str | None
    customer_email: str | None
    finalized_at: datetime
    finalized_on: str
    due_on: str | None
    lines: tuple[PageLine, ...]
    subtotal: str
    total: str
    amount_due: str
    amount_paid: str
    amount_remaining: str
    payable: bool
    saved_card: SavedCard | None

    @property
    def tenant(self) -> Tenant:
        return Tenant(self.merchant_id, self.livemode)


async def page_for(deps: Deps, token: str) -> InvoicePage | None:
    """The invoice whose page ``token`` opens; None for a token no invoice has."""
    return await _page(deps, await hosted_db.by_token(deps.pool, token))


async def page_of_invoice(deps: Deps, invoice_id: str) -> InvoicePage | None:
    """The page of a finalized invoice, by its id (the PDF job's)."""
    return await _page(deps, await hosted_db.by_invoice(deps.pool, invoice_id))


async def _page(deps: Deps, hosted: HostedInvoiceRow | None) -> InvoicePage | None:
    if hosted is None:
        return None
    row = await invoices_db.get_invoice(
        deps.pool, hosted.merchant_id, hosted.livemode, hosted.invoice_id
    )
    if row is None or row.number is None or row.finalized_at is None:
        return None
    lines = (await invoices_db.lines_of(deps.pool, [row.id]))[row.id]
    card = await _saved_card(deps, row) if _payable(row.status) else None
    return view_model(hosted, row, lines, card)


def _payable(status: InvoiceStatus) -> bool:
    return status in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE)


async def _saved_card(deps: Deps, row: InvoiceRow) -> SavedCard | None:
    """The card ``/pay`` would charge without being given one, if it is saved to the
    customer: the invoice's default method, else the customer's."""
    customer = await customers_db.get_customer(
        deps.pool, row.merchant_id, row.livemode, row.customer_id
    )
    method_id = row.default_payment_method_id or (
        None if customer is None else customer.default_payment_method_id
    )
    if method_id is None:
        return None
    method = await pm_db.get_payment_method(deps.pool, row.merchant_id, row.livemode, method_id)
    if method is None or method.customer_id != row.customer_id or method.detached_at:
        return None
    brand = method.card_brand.replace("_", " ").title()
    return SavedCard(method.id, f"{brand} ending in {method.card_last4}")


def view_model(
    hosted: HostedInvoiceRow,
    row: InvoiceRow,
    lines: list[InvoiceLineRow],
    card: SavedCard | None,
) -> InvoicePage:
    assert row.number is not None and row.finalized_at is not None
    currency = get_currency(row.currency)

    def money(amount: int) -> str:
        return format_display(amount, currency)

    return InvoicePage(
        token=hosted.token,
        form_token=hosted.form_token,
        invoice_id=row.id,
        merchant_id=row.merchant_id,
        livemode=row.livemode,
        customer_id=row.customer_id,
        status=row.status,
        number=row.number,
        currency=currency.code,
        merchant_name=hosted.merchant_name,
        customer_name=hosted.customer_name,
        customer_email=hosted.customer_email,
        finalized_at=row.finalized_at,
        finalized_on=_day(row.finalized_at),
        due_on=None if row.due_date is None else _day(row.due_date),
        lines=tuple(_line(line, money) for line in lines),
        subtotal=money(row.subtotal),
        total=money(row.total),
        amount_due=money(row.amount_due),
        amount_paid=money(row.amount_paid),
        amount_remaining=money(row.amount_remaining),
        payable=_payable(row.status) and row.amount_remaining > 0,
        saved_card=card,
    )


def _day(moment: datetime) -> str:
    return str(format_date(moment.date(), format="long", locale="en_US"))


def _line(line: InvoiceLineRow, money: Callable[[int], str]) -> PageLine:
    period = f"{_day(line.period_start)} to {_day(line.period_end)}"
    if line.period_start == line.period_end:
        period = _day(line.period_start)
    return PageLine(
        description=line.description or ("Subscription" if line.subscription_id else "Item"),
        period=period,
        quantity=line.quantity,
        amount=money(line.amount),
    )
