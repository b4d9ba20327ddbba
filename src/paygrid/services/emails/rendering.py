"""An email's subject, text and HTML, from the Jinja templates beside this module, with
amounts formatted for their currency by Babel (``money.format_display``).

The facts come from the event's snapshot of the object (or the card, for an expiry
notice): what the customer reads is what the event says, whatever changed since."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from babel.dates import format_date
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from paygrid.domain.emails import EmailKind
from paygrid.domain.errors import PaygridError
from paygrid.money import format_display, get_currency

TEMPLATES: Final = Path(__file__).resolve().parent / "templates"
_HTML: Final = Environment(
    loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined
)
_TEXT: Final = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=False,  # noqa: S701 - plain text part: nothing is interpreted as markup
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)
HEADINGS: Final = {
    EmailKind.INVOICE: "Your invoice",
    EmailKind.RECEIPT: "Your receipt",
    EmailKind.PAYMENT_FAILED: "Your payment failed",
    EmailKind.ACTION_REQUIRED: "Confirm your payment",
    EmailKind.CARD_EXPIRING: "Your card is expiring",
}


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def render(kind: EmailKind, merchant: str, facts: dict[str, Any]) -> RenderedEmail:
    """The email of ``kind`` from ``merchant`` with ``facts`` (``invoice_facts``, ...)."""
    subject = _subject(kind, merchant, facts)
    context = {"merchant": merchant, "heading": HEADINGS[kind], "subject": subject, **facts}
    name = kind.value
    return RenderedEmail(
        subject=subject,
        text=_TEXT.get_template(f"{name}.txt").render(context).strip() + "\n",
        html=_HTML.get_template(f"{name}.html").render(context),
    )


def _subject(kind: EmailKind, merchant: str, facts: dict[str, Any]) -> str:
    match kind:
        case EmailKind.INVOICE:
            return f"Invoice {facts['number']} from {merchant}"
        case EmailKind.RECEIPT:
            return f"Your receipt from {merchant}"
        case EmailKind.PAYMENT_FAILED:
            return f"Payment failed for invoice {facts['number']} from {merchant}"
        case EmailKind.ACTION_REQUIRED:
            return f"Confirm your payment to {merchant}"
        case EmailKind.CARD_EXPIRING:
            return f"Your card for {merchant} is expiring"


def amount(minor: int, code: str) -> str:
    """``minor`` units of ``code`` as a customer reads them; the code for an unknown one."""
    try:
        return format_display(minor, get_currency(code))
    except PaygridError:
        return f"{minor} {code.upper()}"


def day(unix: object) -> str | None:
    """A Unix time as a long English date (``December 7, 2026``), or None."""
    if not isinstance(unix, int):
        return None
    return str(format_date(datetime.fromtimestamp(unix, UTC), format="long", locale="en_US"))


def invoice_facts(snapshot: dict[str, Any], base_url: str) -> dict[str, Any]:
    """What the invoice, receipt, failure and action emails say about an invoice."""
    code = str(snapshot.get("currency", "USD"))
    lines = (snapshot.get("lines") or {}).get("data") or []
    error = snapshot.get("last_payment_error") or {}
    return {
        "number": snapshot.get("number") or snapshot.get("id"),
        "amount": amount(int(snapshot.get("amount_due") or 0), code),
        "due_date": day(snapshot.get("due_date")),
        "paid_on": day((snapshot.get("status_transitions") or {}).get("paid_at")),
        "reference": snapshot.get("number") or snapshot.get("id"),
        "lines": [
            {
                "description": line.get("description") or "Item",
                "amount": amount(int(line.get("amount") or 0), code),
            }
            for line in lines
        ],
        "reason": _sentence(error.get("message")) if isinstance(error, dict) else None,
        "next_attempt": day(snapshot.get("next_payment_attempt")),
        "url": _absolute(snapshot.get("hosted_invoice_url"), base_url),
    }


def card_facts(brand: str, last4: str, exp_month: int, exp_year: int) -> dict[str, Any]:
    """What a card expiry notice says (the brand, last four digits and expiry only)."""
    expiry = datetime(exp_year, exp_month, 1, tzinfo=UTC)
    return {
        "brand": brand.replace("_", " ").title() if brand else "payment",
        "last4": last4,
        "expiry": str(format_date(expiry, format="MMMM y", locale="en_US")),
    }


def _absolute(url: object, base_url: str) -> str | None:
    if not isinstance(url, str) or not url:
        return None
    return base_url.rstrip("/") + url if url.startswith("/") else url


def _sentence(message: object) -> str | None:
    """A provider's message, without its final full stop (the template adds one)."""
    return message.strip().rstrip(".") or None if isinstance(message, str) else None
