"""The PDF of a hosted invoice, drawn with fpdf2 from the same view model as the page, by a
Jinja template of simple HTML (``hosted_invoice_pdf.html``) that fpdf2's ``write_html``
lays out. fpdf2 is pure Python: the image needs no system libraries (WeasyPrint would
need Pango, HarfBuzz and fontconfig).

Byte for byte the same on every render of the same invoice: the creation date is the
invoice's ``finalized_at``, the file identifier is derived from the content by fpdf2, and
the fonts are the PDF core fonts (Helvetica, never embedded, so nothing depends on the
fonts of the host). Core fonts cover Windows-1252 only: a currency symbol outside it is
written as the currency's ISO code, any other such character as ``?``."""

from __future__ import annotations

import unicodedata
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from paygrid.services.billing.hosted_invoice_pages import InvoicePage

_ENCODING = "windows-1252"
_TEMPLATES = Environment(
    loader=FileSystemLoader(str(Path(__file__).parent / "templates")),
    autoescape=select_autoescape(["html"]),
)


def render_pdf(page: InvoicePage) -> bytes:
    """The invoice as a PDF (A4)."""
    # Imported here, not at the top: fpdf2 and its fontTools take most of a second to import,
    # which every ``paygrid`` process (serve, worker, each CLI command) paid at start-up
    # through the composition root, for PDFs that only the ``documents`` queue renders.
    from fpdf import FPDF

    html = _TEMPLATES.get_template("hosted_invoice_pdf.html").render(page=page)
    pdf = FPDF(format="A4")
    pdf.core_fonts_encoding = _ENCODING
    pdf.set_creation_date(page.finalized_at)
    pdf.set_title(_core_text(f"Invoice {page.number}", page.currency))
    pdf.set_author(_core_text(page.merchant_name, page.currency))
    pdf.set_lang("en")
    pdf.add_page()
    pdf.set_font("helvetica", size=10)
    pdf.write_html(_core_text(html, page.currency))
    return bytes(pdf.output())


def _core_text(text: str, currency: str) -> str:
    return "".join(_core_char(char, currency) for char in text)


def _core_char(char: str, currency: str) -> str:
    try:
        char.encode(_ENCODING)
    except UnicodeEncodeError:
        return f"{currency} " if unicodedata.category(char) == "Sc" else "?"
    return char
