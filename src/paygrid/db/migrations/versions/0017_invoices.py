"""Invoices (issue 13 §4): pending ``invoice_items`` of a customer, ``invoices`` that collect
them into ``invoice_lines``, and ``invoice_numbering``, one counter row per merchant and mode.

- An invoice's status is one of Stripe's (``draft``, ``open``, ``paid``, ``void``,
  ``uncollectible``); every write of it is guarded in SQL by the transition table of
  ``paygrid.domain.invoices``. A draft has no number and every other invoice has one.
- Totals are integers in minor units: ``total = subtotal`` (no discounts or taxes yet), and
  ``amount_due`` is the total (never below zero); ``amount_remaining`` is computed by the
  database as ``amount_due - amount_paid``, and a paid invoice has nothing remaining.
- Numbers are ``{prefix}-{0001}``, unique per merchant and mode. The counter row is updated
  in the finalizing transaction, so a rolled-back finalize gives its number back and
  concurrent finalizes queue on the row: the numbers are gapless and never reused.
- A subscription's invoice names the subscription and the period it bills;
  ``UNIQUE (subscription_id, period_start)`` means the same period is never invoiced twice,
  whatever runs concurrently (one-off invoices have neither, and NULLs never collide). The
  foreign key to subscriptions comes with their table.
- An invoice item is pending while ``invoice_id`` is NULL; creating an invoice claims the
  customer's pending items of its currency with a guarded update, and copies them into lines.
- ``invoices`` and ``invoice_items`` are audited like the payment core's tables.

Revision ID: 0017_invoices
Revises: 0016_test_clocks
Create Date: 2026-12-07
"""

from __future__ import annotations

from paygrid.db.migration_script import execute_script

revision = "0017_invoices"
down_revision = "0016_test_clocks"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE invoice_numbering (
    merchant_id text NOT NULL REFERENCES merchants(id),
    livemode    boolean NOT NULL,
    prefix      text NOT NULL CHECK (prefix ~ '^[A-Z0-9]{1,12}$'),
    last_number bigint NOT NULL CHECK (last_number >= 1),
    PRIMARY KEY (merchant_id, livemode)
);

CREATE TABLE invoices (
    id                        text PRIMARY KEY,
    merchant_id               text NOT NULL REFERENCES merchants(id),
    livemode                  boolean NOT NULL,
    customer_id               text NOT NULL REFERENCES customers(id),
    status                    text NOT NULL
        CHECK (status IN ('draft', 'open', 'paid', 'void', 'uncollectible')),
    collection_method         text NOT NULL
        CHECK (collection_method IN ('charge_automatically', 'send_invoice')),
    currency                  char(3) NOT NULL,
    days_until_due            integer CHECK (days_until_due BETWEEN 0 AND 3650),
    due_date                  timestamptz,
    auto_advance              boolean NOT NULL,
    description               text CHECK (length(description) <= 1500),
    metadata                  jsonb NOT NULL DEFAULT '{}',
    number                    text,
    subtotal                  bigint NOT NULL,
    total                     bigint NOT NULL,
    amount_due                bigint NOT NULL,
    amount_paid               bigint NOT NULL DEFAULT 0,
    amount_remaining          bigint GENERATED ALWAYS AS (amount_due - amount_paid) STORED,
    attempt_count             integer NOT NULL DEFAULT 0 CHECK (attempt_count >= 0),
    payment_id                text REFERENCES payments(id),
    default_payment_method_id text,
    last_payment_error        jsonb,
    billing_reason            text NOT NULL CHECK (billing_reason IN (
        'manual', 'subscription_create', 'subscription_cycle', 'subscription_update')),
    subscription_id           text,
    period_start              timestamptz,
    period_end                timestamptz,
    finalized_at              timestamptz,
    paid_at                   timestamptz,
    voided_at                 timestamptz,
    marked_uncollectible_at   timestamptz,
    created_at                timestamptz NOT NULL,
    updated_at                timestamptz NOT NULL,
    UNIQUE (merchant_id, livemode, number),
    UNIQUE (subscription_id, period_start),
    CHECK ((number IS NULL) = (status = 'draft')),
    CHECK (total = subtotal),
    CHECK (amount_due = greatest(total, 0)),
    CHECK (amount_paid BETWEEN 0 AND amount_due),
    CHECK (status <> 'paid' OR amount_paid = amount_due),
    CHECK (days_until_due IS NULL OR collection_method = 'send_invoice'),
    CHECK (period_start IS NULL OR subscription_id IS NOT NULL),
    CHECK (period_end IS NULL OR period_end >= period_start)
);
CREATE INDEX invoices_list ON invoices (merchant_id, livemode, id);
CREATE INDEX invoices_by_customer ON invoices (customer_id, id);

CREATE TABLE invoice_items (
    id           text PRIMARY KEY,
    merchant_id  text NOT NULL REFERENCES merchants(id),
    livemode     boolean NOT NULL,
    customer_id  text NOT NULL REFERENCES customers(id),
    invoice_id   text REFERENCES invoices(id),
    currency     char(3) NOT NULL,
    price_id     text REFERENCES prices(id),
    unit_amount  bigint NOT NULL CHECK (unit_amount > 0),
    quantity     integer NOT NULL CHECK (quantity BETWEEN 1 AND 1000000),
    amount       bigint NOT NULL CHECK (amount = unit_amount * quantity),
    description  text CHECK (length(description) <= 1000),
    metadata     jsonb NOT NULL DEFAULT '{}',
    period_start timestamptz NOT NULL,
    period_end   timestamptz NOT NULL CHECK (period_end >= period_start),
    proration    boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL
);
CREATE INDEX invoice_items_list ON invoice_items (merchant_id, livemode, id);
CREATE INDEX invoice_items_pending ON invoice_items (customer_id, currency, id)
    WHERE invoice_id IS NULL;

CREATE TABLE invoice_lines (
    id                   text PRIMARY KEY,
    invoice_id           text NOT NULL REFERENCES invoices(id),
    position             integer NOT NULL CHECK (position >= 0),
    type                 text NOT NULL CHECK (type IN ('invoiceitem', 'subscription')),
    invoice_item_id      text UNIQUE REFERENCES invoice_items(id),
    subscription_id      text,
    subscription_item_id text,
    price_id             text REFERENCES prices(id),
    description          text,
    currency             char(3) NOT NULL,
    unit_amount          bigint,
    quantity             integer NOT NULL CHECK (quantity >= 0),
    amount               bigint NOT NULL,
    proration            boolean NOT NULL,
    period_start         timestamptz NOT NULL,
    period_end           timestamptz NOT NULL CHECK (period_end >= period_start),
    metadata             jsonb NOT NULL DEFAULT '{}',
    UNIQUE (invoice_id, position),
    CHECK ((type = 'invoiceitem') = (invoice_item_id IS NOT NULL))
);

CREATE TRIGGER invoices_audit AFTER INSERT OR UPDATE OR DELETE ON invoices
    FOR EACH ROW EXECUTE FUNCTION paygrid_audit('invoice');
CREATE TRIGGER invoice_items_audit AFTER INSERT OR UPDATE OR DELETE ON invoice_items
    FOR EACH ROW EXECUTE FUNCTION paygrid_audit('invoiceitem');
"""

DOWNGRADE = """
DROP TRIGGER invoice_items_audit ON invoice_items;
DROP TRIGGER invoices_audit ON invoices;
DROP TABLE invoice_lines;
DROP TABLE invoice_items;
DROP TABLE invoices;
DROP TABLE invoice_numbering;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
