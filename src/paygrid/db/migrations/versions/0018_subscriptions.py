"""Subscriptions (issue 13 §3 and §5): ``subscriptions`` (``sub_...``), their
``subscription_items`` (``si_...``, one per price) and ``subscription_prorations``, the
pending proration lines of an update with ``proration_behavior: create_prorations`` that the
next invoice collects.

- A subscription's status is one of Stripe's eight; every write of it is guarded in SQL by
  the transition table of ``paygrid.domain.subscriptions``.
- Its periods follow from ``billing_cycle_anchor``, ``interval`` and ``interval_count``
  (``paygrid.domain.billing_dates``); ``current_period_start``/``current_period_end`` is the
  period being billed, and the schedule renews it when ``current_period_end`` is reached on
  the customer's clock. The renewal's invoice names the subscription and the period's start,
  and ``UNIQUE (subscription_id, period_start)`` on invoices (migration 0017) means a period
  is invoiced at most once; this migration adds the foreign keys from invoices and their
  lines to subscriptions.
- ``subscriptions`` is audited like the payment core's tables.

Revision ID: 0018_subscriptions
Revises: 0017_invoices
Create Date: 2026-12-07
"""

from __future__ import annotations

from paygrid.db.migration_script import execute_script

revision = "0018_subscriptions"
down_revision = "0017_invoices"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE subscriptions (
    id                        text PRIMARY KEY,
    merchant_id               text NOT NULL REFERENCES merchants(id),
    livemode                  boolean NOT NULL,
    customer_id               text NOT NULL REFERENCES customers(id),
    status                    text NOT NULL CHECK (status IN ('incomplete',
        'incomplete_expired', 'trialing', 'active', 'past_due', 'unpaid', 'paused',
        'canceled')),
    currency                  char(3) NOT NULL,
    interval                  text NOT NULL CHECK (interval IN ('day', 'week', 'month', 'year')),
    interval_count            integer NOT NULL CHECK (interval_count BETWEEN 1 AND 365),
    billing_cycle_anchor      timestamptz NOT NULL,
    current_period_start      timestamptz NOT NULL,
    current_period_end        timestamptz NOT NULL,
    trial_start               timestamptz,
    trial_end                 timestamptz,
    trial_will_end_sent       boolean NOT NULL DEFAULT false,
    upcoming_sent_for         timestamptz,
    cancel_at_period_end      boolean NOT NULL DEFAULT false,
    canceled_at               timestamptz,
    ended_at                  timestamptz,
    paused_at                 timestamptz,
    resumes_at                timestamptz,
    collection_method         text NOT NULL
        CHECK (collection_method IN ('charge_automatically', 'send_invoice')),
    days_until_due            integer CHECK (days_until_due BETWEEN 0 AND 3650),
    default_payment_method_id text,
    latest_invoice_id         text REFERENCES invoices(id),
    metadata                  jsonb NOT NULL DEFAULT '{}',
    created_at                timestamptz NOT NULL,
    updated_at                timestamptz NOT NULL,
    CHECK (current_period_end > current_period_start),
    CHECK ((trial_start IS NULL) = (trial_end IS NULL)),
    CHECK (days_until_due IS NULL OR collection_method = 'send_invoice'),
    CHECK ((status IN ('canceled', 'incomplete_expired')) = (ended_at IS NOT NULL)),
    CHECK (resumes_at IS NULL OR status = 'paused')
);
CREATE INDEX subscriptions_list ON subscriptions (merchant_id, livemode, id);
CREATE INDEX subscriptions_by_customer ON subscriptions (customer_id, id);
CREATE INDEX subscriptions_live ON subscriptions (current_period_end)
    WHERE status NOT IN ('canceled', 'incomplete_expired');

CREATE TABLE subscription_items (
    id              text PRIMARY KEY,
    subscription_id text NOT NULL REFERENCES subscriptions(id),
    price_id        text NOT NULL REFERENCES prices(id),
    quantity        integer NOT NULL CHECK (quantity BETWEEN 1 AND 1000000),
    metadata        jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL,
    UNIQUE (subscription_id, price_id)
);
CREATE INDEX subscription_items_by_price ON subscription_items (price_id);

CREATE TABLE subscription_prorations (
    id              text PRIMARY KEY,
    subscription_id text NOT NULL REFERENCES subscriptions(id),
    invoice_id      text REFERENCES invoices(id),
    position        integer NOT NULL CHECK (position >= 0),
    price_id        text NOT NULL REFERENCES prices(id),
    unit_amount     bigint NOT NULL CHECK (unit_amount >= 0),
    quantity        integer NOT NULL CHECK (quantity >= 0),
    amount          bigint NOT NULL,
    period_start    timestamptz NOT NULL,
    period_end      timestamptz NOT NULL CHECK (period_end >= period_start),
    created_at      timestamptz NOT NULL
);
CREATE INDEX subscription_prorations_pending ON subscription_prorations (subscription_id, id)
    WHERE invoice_id IS NULL;

ALTER TABLE invoices ADD CONSTRAINT invoices_subscription_id_fkey
    FOREIGN KEY (subscription_id) REFERENCES subscriptions(id);
ALTER TABLE invoice_lines ADD CONSTRAINT invoice_lines_subscription_id_fkey
    FOREIGN KEY (subscription_id) REFERENCES subscriptions(id);
CREATE INDEX invoices_by_subscription ON invoices (subscription_id, id)
    WHERE subscription_id IS NOT NULL;

CREATE TRIGGER subscriptions_audit AFTER INSERT OR UPDATE OR DELETE ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION paygrid_audit('subscription');
"""

DOWNGRADE = """
DROP TRIGGER subscriptions_audit ON subscriptions;
DROP INDEX invoices_by_subscription;
ALTER TABLE invoice_lines DROP CONSTRAINT invoice_lines_subscription_id_fkey;
ALTER TABLE invoices DROP CONSTRAINT invoices_subscription_id_fkey;
DROP TABLE subscription_prorations;
DROP TABLE subscription_items;
DROP TABLE subscriptions;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
