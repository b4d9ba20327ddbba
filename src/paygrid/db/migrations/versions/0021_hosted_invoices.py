"""Hosted invoice pages and PDFs (issue 14 §3).

- ``invoices.hosted_invoice_url``: ``{public base url}/i/{token}``, set in the finalizing
  transaction (every finalize path), NULL for drafts (a CHECK). It is stored whole because
  the invoice object returns it on every read and event snapshots carry it; invoices
  finalized before this migration have none.
- ``hosted_invoices``: one row per finalized invoice, written in the finalizing
  transaction. ``token`` is the page's capability (``secrets.token_urlsafe(24)``, 192
  bits), UNIQUE for the lookup; ``form_token`` is the page's CSRF token (as a checkout
  session's). It is stored as is, not hashed: the URL that contains it is
  part of the invoice object and its events, so a hash would protect nothing.
  ``merchant_name``, ``customer_name`` and ``customer_email`` are the snapshot as of
  finalize, which the page and the PDF show, so a later rename never changes them. ``pdf``
  is rendered once from that snapshot on the first download and stored (first writer wins:
  ``UPDATE ... WHERE pdf IS NULL``); it never changes afterwards.

Revision ID: 0021_hosted_invoices
Revises: 0020_dunning
Create Date: 2026-12-07
"""

from __future__ import annotations

from paygrid.db.migration_script import execute_script

revision = "0021_hosted_invoices"
down_revision = "0020_dunning"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE invoices ADD COLUMN hosted_invoice_url text
    CHECK (length(hosted_invoice_url) <= 2048);
ALTER TABLE invoices ADD CONSTRAINT invoices_hosted_url_not_draft
    CHECK (status <> 'draft' OR hosted_invoice_url IS NULL);

CREATE TABLE hosted_invoices (
    invoice_id      text PRIMARY KEY REFERENCES invoices(id),
    merchant_id     text NOT NULL REFERENCES merchants(id),
    livemode        boolean NOT NULL,
    token           text NOT NULL UNIQUE CHECK (length(token) >= 22),
    form_token      text NOT NULL CHECK (length(form_token) >= 22),
    merchant_name   text NOT NULL,
    customer_name   text,
    customer_email  text,
    pdf             bytea,
    pdf_rendered_at timestamptz,
    created_at      timestamptz NOT NULL,
    CHECK ((pdf IS NULL) = (pdf_rendered_at IS NULL))
);
CREATE INDEX hosted_invoices_list ON hosted_invoices (merchant_id, livemode, invoice_id);
"""

DOWNGRADE = """
DROP TABLE hosted_invoices;
ALTER TABLE invoices DROP CONSTRAINT invoices_hosted_url_not_draft;
ALTER TABLE invoices DROP COLUMN hosted_invoice_url;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
