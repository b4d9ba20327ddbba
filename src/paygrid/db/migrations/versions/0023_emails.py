"""Emails to customers (issue 14 §5): ``emails``, the idempotent send log.

- One row per email: ``UNIQUE (kind, object_id, reason_key)`` (object ids are unique across
  merchants), so an event handled twice, or a card expiry checked twice, records it once.
- ``status`` follows ``paygrid.domain.emails``' transition table: ``queued`` → ``sending``
  (committed before the SMTP conversation) → ``sent`` | ``failed``; ``recorded`` without
  an SMTP server and ``skipped`` when the merchant turned the kind off are final.
- ``message_id`` is fixed when the row is written: a resend carries the same Message-ID.
- The rendered subject and bodies are stored, so a resend is the same message and the
  dashboard shows what went out. Scoped by merchant and mode like every tenant table.

Revision ID: 0023_emails
Revises: 0022_billing_portal
Create Date: 2026-12-07
"""

from __future__ import annotations

from paygrid.db.migration_script import execute_script

revision = "0023_emails"
down_revision = "0022_billing_portal"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE emails (
    id          text PRIMARY KEY,
    merchant_id text NOT NULL REFERENCES merchants(id),
    livemode    boolean NOT NULL,
    kind        text NOT NULL CHECK (kind IN (
        'invoice', 'receipt', 'payment_failed', 'action_required', 'card_expiring')),
    object_id   text NOT NULL,
    reason_key  text NOT NULL,
    customer_id text REFERENCES customers(id),
    event_id    text,
    recipient   text NOT NULL CHECK (length(recipient) <= 512),
    sender      text NOT NULL,
    subject     text NOT NULL,
    text_body   text NOT NULL,
    html_body   text NOT NULL,
    message_id  text NOT NULL UNIQUE,
    status      text NOT NULL CHECK (status IN (
        'queued', 'sending', 'sent', 'failed', 'recorded', 'skipped')),
    attempts    integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error  text CHECK (length(last_error) <= 500),
    sent_at     timestamptz,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    UNIQUE (kind, object_id, reason_key),
    CHECK ((status = 'sent') = (sent_at IS NOT NULL))
);
CREATE INDEX emails_list ON emails (merchant_id, livemode, id);
CREATE INDEX emails_by_customer ON emails (customer_id, id);
"""

DOWNGRADE = """
DROP TABLE emails;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
