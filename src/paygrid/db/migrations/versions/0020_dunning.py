"""Dunning (issue 14 §1): an invoice's retry schedule, and the history of its attempts.

- ``invoices.next_payment_attempt``: when the next automatic attempt is due (on the
  customer's clock), NULL when none will happen; ``retry_position`` counts the schedule's
  steps used (a retry skipped by the card network cap takes one too);
  ``hard_declined_methods`` are the methods a hard decline stopped for this invoice;
  ``retry_payment_method_id`` is a fallback method the next retries charge;
  ``action_payment_id`` / ``action_expires_at``: an off-session payment waiting for the
  customer's authentication, canceled at that time; ``retries_exhausted_at``: when the
  schedule ended (``on_exhausted`` was applied then).
- ``invoices_dunning_due`` finds the invoices with due work (an open invoice's retry, any
  invoice's awaited authentication that expires), earliest first.
- ``invoice_dunning_attempts``: one row per failed, skipped or expired attempt, with its
  decline code and class and the retry it scheduled (the dashboard's attempt history).
- The card network cap counts a method's payments through its customer's payments
  (``payments_by_customer_newest``), so no index on the method is added to ``payments`` or
  ``payment_attempts``: every payment written would pay for it.

Revision ID: 0020_dunning
Revises: 0019_billing_settings
Create Date: 2026-12-07
"""

from __future__ import annotations

from paygrid.db.migration_script import execute_script

revision = "0020_dunning"
down_revision = "0019_billing_settings"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE invoices
    ADD COLUMN next_payment_attempt    timestamptz,
    ADD COLUMN retry_position          integer NOT NULL DEFAULT 0 CHECK (retry_position >= 0),
    ADD COLUMN hard_declined_methods   text[] NOT NULL DEFAULT '{}',
    ADD COLUMN retry_payment_method_id text,
    ADD COLUMN action_payment_id       text REFERENCES payments(id),
    ADD COLUMN action_expires_at       timestamptz,
    ADD COLUMN retries_exhausted_at    timestamptz,
    ADD CONSTRAINT invoices_action_pair
        CHECK ((action_payment_id IS NULL) = (action_expires_at IS NULL));

CREATE INDEX invoices_dunning_due ON invoices
    ((least(CASE WHEN status = 'open' THEN next_payment_attempt END, action_expires_at)), id)
    WHERE next_payment_attempt IS NOT NULL OR action_expires_at IS NOT NULL;

CREATE TABLE invoice_dunning_attempts (
    id                   text PRIMARY KEY,
    merchant_id          text NOT NULL REFERENCES merchants(id),
    livemode             boolean NOT NULL,
    invoice_id           text NOT NULL REFERENCES invoices(id),
    attempt              integer CHECK (attempt >= 1),
    outcome              text NOT NULL
        CHECK (outcome IN ('failed', 'requires_action', 'action_expired', 'skipped')),
    payment_id           text REFERENCES payments(id),
    payment_method_id    text,
    code                 text,
    decline_code         text,
    classification       text CHECK (classification IN ('hard', 'soft', 'action')),
    message              text,
    next_payment_attempt timestamptz,
    exhausted            boolean NOT NULL DEFAULT false,
    created_at           timestamptz NOT NULL
);
CREATE INDEX invoice_dunning_attempts_invoice
    ON invoice_dunning_attempts (invoice_id, created_at, id);
CREATE INDEX invoice_dunning_attempts_list ON invoice_dunning_attempts (merchant_id, livemode, id);
CREATE UNIQUE INDEX invoice_dunning_attempts_once
    ON invoice_dunning_attempts (invoice_id, attempt, outcome) WHERE attempt IS NOT NULL;
"""

DOWNGRADE = """
DROP TABLE invoice_dunning_attempts;
DROP INDEX invoices_dunning_due;
ALTER TABLE invoices
    DROP CONSTRAINT invoices_action_pair,
    DROP COLUMN retries_exhausted_at,
    DROP COLUMN action_expires_at,
    DROP COLUMN action_payment_id,
    DROP COLUMN retry_payment_method_id,
    DROP COLUMN hard_declined_methods,
    DROP COLUMN retry_position,
    DROP COLUMN next_payment_attempt
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
