"""Billing settings and scripted test outcomes (issue 14 §1, §2).

- ``billing_settings``: one row per merchant and mode, created on the first update. Each
  section (``dunning``, ``invoices``, ``portal``, ``emails``) is a jsonb object of the fields
  the merchant set; a field never set takes its default from
  ``paygrid.domain.billing_settings``, so defaults can change without rewriting rows. The
  table is audited like the other merchant objects (``billing_settings.updated`` in the
  audit log, with the sections before and after).
- ``invoices.footer``: the footer an invoice carries, copied from the settings when it is
  finalized (Stripe's ``footer``).
- ``simulator.scripted_outcomes``: the scripted outcomes of a saved method's next charges in
  the simulator (test mode only), one row per outcome in order. A charge takes the first
  with ``FOR UPDATE SKIP LOCKED`` and deletes it, so two concurrent charges never take the
  same one. In the database, not in a process: the API scripts, the worker charges.

Revision ID: 0019_billing_settings
Revises: 0018_subscriptions
Create Date: 2026-12-07
"""

from __future__ import annotations

from paygrid.db.migration_script import execute_script

revision = "0019_billing_settings"
down_revision = "0018_subscriptions"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE billing_settings (
    id          text PRIMARY KEY,
    merchant_id text NOT NULL REFERENCES merchants(id),
    livemode    boolean NOT NULL,
    dunning     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(dunning) = 'object'),
    invoices    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(invoices) = 'object'),
    portal      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(portal) = 'object'),
    emails      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(emails) = 'object'),
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    UNIQUE (merchant_id, livemode)
);

CREATE TRIGGER billing_settings_audit AFTER INSERT OR UPDATE OR DELETE ON billing_settings
    FOR EACH ROW EXECUTE FUNCTION paygrid_audit('billing_settings');

ALTER TABLE invoices ADD COLUMN footer text CHECK (length(footer) <= 5000);

CREATE TABLE simulator.scripted_outcomes (
    token_id          text NOT NULL,
    position          integer NOT NULL,
    outcome           text NOT NULL,
    merchant_id       text NOT NULL,
    livemode          boolean NOT NULL CHECK (NOT livemode),
    payment_method_id text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (token_id, position)
)
"""

DOWNGRADE = """
DROP TABLE simulator.scripted_outcomes;
ALTER TABLE invoices DROP COLUMN footer;
DROP TRIGGER billing_settings_audit ON billing_settings;
DROP TABLE billing_settings
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
