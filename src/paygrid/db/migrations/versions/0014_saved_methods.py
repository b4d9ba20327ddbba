"""Saved methods and merchant-initiated charges (issue 13 §1): payments say whether they
save their method for later off-session charges (``setup_future_usage``) and whether they
are such a charge (``off_session``); mandates record the customer's acceptance (time, IP,
user agent) and belong to the method they allow charging; setup intents save a method
without charging it; customers get a default payment method for invoices. The simulator
remembers which cards were authenticated for off-session use (``simulator.setups``) and
verifies a card with a zero-amount authorization (a setup).

Revision ID: 0014_saved_methods
Revises: 0013_audit_writes
Create Date: 2026-12-07
"""

from __future__ import annotations

from paygrid.db.migration_script import execute_script

revision = "0014_saved_methods"
down_revision = "0013_audit_writes"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE payments
    ADD COLUMN setup_future_usage text CHECK (setup_future_usage IN ('off_session')),
    ADD COLUMN off_session boolean NOT NULL DEFAULT false,
    ADD COLUMN mandate_data jsonb;

CREATE TABLE mandates (
    id                  text PRIMARY KEY,
    merchant_id         text NOT NULL REFERENCES merchants(id),
    livemode            boolean NOT NULL,
    payment_method_id   text NOT NULL REFERENCES payment_methods(id),
    customer_id         text NOT NULL REFERENCES customers(id),
    source_id           text NOT NULL,
    acceptance_type     text NOT NULL CHECK (acceptance_type IN ('online', 'offline')),
    ip_address          text,
    user_agent          text,
    accepted_at         timestamptz NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mandates_list ON mandates (merchant_id, livemode, id);
CREATE INDEX mandates_method ON mandates (payment_method_id);
CREATE UNIQUE INDEX mandates_source ON mandates (source_id);
CREATE INDEX mandates_customer ON mandates (customer_id);

ALTER TABLE payment_methods ADD COLUMN mandate_id text REFERENCES mandates(id);

ALTER TABLE customers ADD COLUMN default_payment_method_id text REFERENCES payment_methods(id);
CREATE INDEX customers_default_payment_method ON customers (default_payment_method_id)
    WHERE default_payment_method_id IS NOT NULL;

CREATE TABLE setup_intents (
    id                   text PRIMARY KEY,
    merchant_id          text NOT NULL REFERENCES merchants(id),
    livemode             boolean NOT NULL,
    status               text NOT NULL CHECK (status IN ('requires_payment_method',
                         'requires_confirmation', 'requires_action', 'processing', 'canceled',
                         'succeeded')),
    customer_id          text REFERENCES customers(id),
    payment_method_id    text REFERENCES payment_methods(id),
    usage                text NOT NULL CHECK (usage IN ('off_session', 'on_session')),
    description          text,
    metadata             jsonb NOT NULL DEFAULT '{}',
    return_url           text,
    connector            text,
    connector_account_id text,
    attempt_key          text,
    provider_reference   text,
    last_setup_error     jsonb,
    next_action          jsonb,
    mandate_id           text REFERENCES mandates(id),
    mandate_data         jsonb,
    cancellation_reason  text,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL
);
CREATE INDEX setup_intents_list ON setup_intents (merchant_id, livemode, id);
CREATE INDEX setup_intents_customer ON setup_intents (customer_id) WHERE customer_id IS NOT NULL;

ALTER TABLE simulator.charges DROP CONSTRAINT charges_amount_check;
ALTER TABLE simulator.charges ADD CONSTRAINT charges_amount_check CHECK (amount >= 0);
ALTER TABLE simulator.charges ADD COLUMN setup_future_usage boolean NOT NULL DEFAULT false;
CREATE TABLE simulator.setups (
    token_id   text PRIMARY KEY,
    charge_id  text NOT NULL REFERENCES simulator.charges(id),
    created_at timestamptz NOT NULL DEFAULT now()
)
"""

DOWNGRADE = """
DROP TABLE simulator.setups;
ALTER TABLE simulator.charges DROP COLUMN setup_future_usage;
DELETE FROM simulator.operations WHERE charge_id IN
    (SELECT id FROM simulator.charges WHERE amount = 0);
DELETE FROM simulator.charges WHERE amount = 0;
ALTER TABLE simulator.charges DROP CONSTRAINT charges_amount_check;
ALTER TABLE simulator.charges ADD CONSTRAINT charges_amount_check CHECK (amount > 0);
DROP TABLE setup_intents;
ALTER TABLE customers DROP COLUMN default_payment_method_id;
ALTER TABLE payment_methods DROP COLUMN mandate_id;
DROP TABLE mandates;
ALTER TABLE payments DROP COLUMN off_session, DROP COLUMN setup_future_usage,
    DROP COLUMN mandate_data
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
